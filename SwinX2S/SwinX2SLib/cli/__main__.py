"""``python -m SwinX2SLib.cli`` (how the Slicer modules start the command line under PythonSlicer)."""

from . import console_main

console_main()
