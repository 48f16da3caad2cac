"""The application layer: session state, controller, command line, window composition.

Qt-free modules: ``session``, ``controller``, ``settings``, ``cli``, ``errors``.
Qt-bound: ``workers``, ``main_window``, ``__main__``.
"""
