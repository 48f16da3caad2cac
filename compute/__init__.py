"""Pure compute core of Softmax Lab: numpy + torch, never Qt.

Import the submodules you need (``softmax_lab.compute.softmax`` …). This
package imports nothing heavy at import time: torch is imported inside the
functions that use it, so the window can paint its first frame before torch
has loaded.
"""
