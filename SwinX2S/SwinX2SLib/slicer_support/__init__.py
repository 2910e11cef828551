"""Plain-Python logic behind the SwinX2S and SwinX2STrain Slicer modules.

The Slicer modules keep every computation out of the GUI process: they run the ``swinx2s`` command line as
``PythonSlicer -m SwinX2SLib.cli <command> ... --progress json`` in a ``qt.QProcess`` and turn its output into
MRML nodes. Everything here is the part of that glue that needs neither Slicer nor Qt, so that it is tested
against the real command line without Slicer (``Testing/test_slicer_modules.py``):

- parameter dataclasses (:class:`ReconstructParameters`, :class:`DrrParameters`, :class:`ModelImportParameters`,
  :class:`TrainParameters`) whose ``as_arg_list()`` builds the command line, and
  :func:`command_line` / :func:`subprocess_environment` that turn it into a runnable process;
- :class:`EventParser`, which splits the process output into JSON-lines events (:func:`parse_event`);
- :func:`process_tree`, :func:`terminate_processes`, :func:`kill_processes`: Cancel ends the whole process tree;
- :func:`read_drr_result` / :func:`detector_ijk_to_ras`, which place the rendered radiographs on their detector
  planes in 3-D;
- :func:`read_reconstruction_result`, :func:`read_measure_result`, :func:`segment_table`,
  :func:`measurement_table` and :func:`landmark_markups`, which map the commands' result files onto table rows,
  markup points and lines;
- :func:`list_models`, which lists the models a user can pick (built-in, imported and fine-tuned);
- :func:`read_training_curves` / :func:`format_duration` for the live training plot and its ETA;
- :func:`device_probe_command` / :func:`parse_device_probe`, which report PyTorch, CUDA and the GPU.

This module never imports ``slicer``, ``qt``, ``ctk``, ``vtk`` or ``torch`` at import time (only inside the
functions that need the library: numpy, SimpleITK or torch, all of which Slicer provides).
"""

from __future__ import annotations

from .commands import (
    CLI_MODULE,
    DEVICES,
    DRR_GEOMETRIES,
    MESH_FORMATS,
    Device,
    DrrParameters,
    ReconstructParameters,
    command_line,
    library_parent,
    result_files,
    subprocess_environment,
)
from .events import ErrorEvent, Event, EventParser, LogLine, ProgressEvent, ResultEvent, WarningEvent, parse_event
from .models import (
    MODEL_VARIANTS,
    MODELS_DIR_ENV,
    DeviceInfo,
    GpuInfo,
    ModelEntry,
    ModelImportParameters,
    ModelKind,
    device_probe_command,
    latest_run_dir,
    list_models,
    missing_requirements,
    models_directory,
    parse_device_probe,
    probe_devices,
    unique_model_dir,
)
from .placement import PlacedImage, detector_ijk_to_ras, read_drr_result
from .processes import kill_processes, process_tree, terminate_processes, wait_for_exit
from .results import (
    SHAFT_LINE_MM,
    MarkupLine,
    MarkupPoint,
    Markups,
    ReconstructionResult,
    Segment,
    Table,
    landmark_markups,
    measurement_table,
    read_measure_result,
    read_reconstruction_result,
    segment_table,
)
from .training import (
    RUN_MODEL_DIR,
    STOP_FILE,
    TRAIN_PRESETS,
    TrainingCurves,
    TrainParameters,
    clear_stop_request,
    format_duration,
    read_training_curves,
    request_stop,
    resume_arg_list,
)

__all__ = [
    "CLI_MODULE",
    "DEVICES",
    "DRR_GEOMETRIES",
    "MESH_FORMATS",
    "MODELS_DIR_ENV",
    "MODEL_VARIANTS",
    "RUN_MODEL_DIR",
    "SHAFT_LINE_MM",
    "STOP_FILE",
    "TRAIN_PRESETS",
    "Device",
    "DeviceInfo",
    "DrrParameters",
    "ErrorEvent",
    "Event",
    "EventParser",
    "GpuInfo",
    "LogLine",
    "MarkupLine",
    "MarkupPoint",
    "Markups",
    "ModelEntry",
    "ModelImportParameters",
    "ModelKind",
    "PlacedImage",
    "ProgressEvent",
    "ReconstructParameters",
    "ReconstructionResult",
    "ResultEvent",
    "Segment",
    "Table",
    "TrainParameters",
    "TrainingCurves",
    "WarningEvent",
    "clear_stop_request",
    "command_line",
    "detector_ijk_to_ras",
    "device_probe_command",
    "format_duration",
    "kill_processes",
    "landmark_markups",
    "latest_run_dir",
    "library_parent",
    "list_models",
    "measurement_table",
    "missing_requirements",
    "models_directory",
    "parse_device_probe",
    "parse_event",
    "probe_devices",
    "process_tree",
    "read_drr_result",
    "read_measure_result",
    "read_reconstruction_result",
    "read_training_curves",
    "request_stop",
    "result_files",
    "resume_arg_list",
    "segment_table",
    "subprocess_environment",
    "terminate_processes",
    "unique_model_dir",
    "wait_for_exit",
]
