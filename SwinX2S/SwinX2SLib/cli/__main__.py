"""``python -m SwinX2SLib.cli`` (how the Slicer modules start the command line under PythonSlicer)."""

import sys

from . import main

sys.exit(main())
