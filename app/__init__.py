"""The application layer: session state, controller, command line, window composition.

Qt-free modules: ``session``, ``controller``, ``cli``, ``errors``, and the two that
the first frame needs before numpy is imported, ``example`` (the built-in example)
and ``state_files`` (where autosaves, the last session and the log live).
Qt-bound: ``settings`` (QSettings), ``workers``, ``main_window``, ``gui``, ``__main__``.
"""
