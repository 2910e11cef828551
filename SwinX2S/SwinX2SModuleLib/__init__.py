"""What the SwinX2S Slicer modules do to the MRML scene, without Qt (runs in Slicer and on ``slicer-core``).

The modules' widgets only wire the GUI; everything that creates or changes nodes is here, one concept per file:

- :mod:`.logics`: :class:`SceneLogics`, the scene and the module logics (from the application, or standalone);
- :mod:`.colors`: the SwinX2S colour table and terminology context (``Resources/SwinX2S.term.json``);
- :mod:`.segmentation`: a label map → segments with names, colours and terminology;
- :mod:`.tables`, :mod:`.markups`: result tables and landmarks / femoral axes;
- :mod:`.drrs`: rendered radiographs placed on their detector planes;
- :mod:`.plots`: the live training chart;
- :mod:`.runs`: one subject-hierarchy folder per run;
- :mod:`.reconstruction`: a whole ``reconstruct`` result into a new run folder;
- :mod:`.xrays`: input volumes → files for the command line, with the source of each X-ray's pixel spacing;
- :mod:`.requests`: the input nodes → the ``reconstruct`` and ``drr`` requests;
- :mod:`.sceneclose`: noticing that the scene was closed while a command ran;
- :mod:`.reloading`: Reload & Test re-imports the packages with their submodules.

It imports ``slicer`` and ``vtk`` only, never ``qt``, ``ctk``, ``torch``, ``scipy`` or ``skimage``.
"""

from .colors import COLOR_TABLE_NAME, load_color_table, register_terminology
from .drrs import load_drrs, load_placed_image
from .logics import SceneLogics, remove_node
from .markups import add_markups
from .plots import training_chart
from .reconstruction import LoadedReconstruction, load_reconstruction
from .reloading import reload_package
from .requests import drr_request, reconstruct_request
from .runs import RunFolder, new_run_folder, run_folders
from .sceneclose import SceneCloseWatcher
from .segmentation import import_labels, load_label_volume
from .tables import add_table
from .xrays import SpacingSource, spacing_source, write_volume, xray_file

__all__ = [
    "COLOR_TABLE_NAME",
    "LoadedReconstruction",
    "RunFolder",
    "SceneCloseWatcher",
    "SceneLogics",
    "SpacingSource",
    "add_markups",
    "add_table",
    "drr_request",
    "import_labels",
    "load_color_table",
    "load_drrs",
    "load_label_volume",
    "load_placed_image",
    "load_reconstruction",
    "new_run_folder",
    "reconstruct_request",
    "register_terminology",
    "reload_package",
    "remove_node",
    "run_folders",
    "spacing_source",
    "training_chart",
    "write_volume",
    "xray_file",
]
