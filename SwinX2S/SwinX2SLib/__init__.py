"""SwinX2SLib: 3-D bone segmentation from biplanar X-rays (Swin-X2S, Liu et al.).

The library behind the SwinX2S 3D Slicer extension. It never imports Slicer, Qt, CTK or MRML; the Slicer modules
reach it through the ``swinx2s`` command line (:mod:`SwinX2SLib.cli`) or small pure functions.
"""

__version__ = "0.1.0"
