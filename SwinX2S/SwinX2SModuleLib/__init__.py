"""What the SwinX2S Slicer modules do to the MRML scene, without Qt (runs in Slicer and on ``slicer-core``).

The modules' widgets only wire the GUI; everything that creates or changes nodes is here, one concept per file:

- :mod:`.logics`: :class:`SceneLogics`, the scene and the module logics (from the application, or standalone);
- :mod:`.colors`: the SwinX2S colour table and terminology context (``Resources/SwinX2S.term.json``);
- :mod:`.segmentation`: a label map → segments with names, colours and terminology;
- :mod:`.tables`, :mod:`.markups`: result tables and landmarks / femoral axes;
- :mod:`.drrs`: rendered radiographs placed on their detector planes;
- :mod:`.runs`: one subject-hierarchy folder per run;
- :mod:`.reconstruction`: a whole ``reconstruct`` result into a new run folder;
- :mod:`.sceneclose`: noticing that the scene was closed while a command ran.

It imports ``slicer`` and ``vtk`` only, never ``qt``, ``ctk``, ``torch``, ``scipy`` or ``skimage``.
"""

from .colors import COLOR_TABLE_NAME, load_color_table, register_terminology
from .drrs import load_drrs, load_placed_image
from .logics import SceneLogics, remove_node
from .markups import add_markups
from .reconstruction import LoadedReconstruction, load_reconstruction
from .runs import RunFolder, new_run_folder, run_folders
from .sceneclose import SceneCloseWatcher
from .segmentation import import_labels, load_label_volume
from .tables import add_table

__all__ = [
    "COLOR_TABLE_NAME",
    "LoadedReconstruction",
    "RunFolder",
    "SceneCloseWatcher",
    "SceneLogics",
    "add_markups",
    "add_table",
    "import_labels",
    "load_color_table",
    "load_drrs",
    "load_label_volume",
    "load_placed_image",
    "load_reconstruction",
    "new_run_folder",
    "register_terminology",
    "remove_node",
    "run_folders",
]
