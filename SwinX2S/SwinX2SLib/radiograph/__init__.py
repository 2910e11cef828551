"""Clinical radiographs (DICOM DX/CR, exported images) as network inputs, and a simulator to test that.

One concept per module:

* :mod:`.geometry`: reading a radiograph with its geometry (mid-plane pixel spacing from the DICOM tags) and a
  record of where every number came from;
* :mod:`.orientation`: ``ViewPosition`` / ``PatientOrientation`` checks and the turn into display orientation
  (the axes themselves are defined in :mod:`SwinX2SLib.conventions`);
* :mod:`.intensity`: collimation and marker masks, percentile window, histogram matching to the training DRRs;
* :mod:`.alignment`: the superior-inferior offset and scale between the two views;
* :mod:`.preprocess`: the whole pipeline, two radiographs → the model's input pair;
* :mod:`.effects`: what real images add (scatter, heel effect, noise, unsharp masking, gamma, blur);
* :mod:`.simulate`: perspective radiographs of a CT at clinical geometry, written as DICOM DX.
"""

from __future__ import annotations

from .geometry import ClinicalRadiograph, read_radiograph
from .preprocess import PreparedPair, Region, prepare_radiograph_pair

__all__ = ["ClinicalRadiograph", "PreparedPair", "Region", "prepare_radiograph_pair", "read_radiograph"]
