"""SwinX2S: reconstruct a labelled 3-D bone segmentation from two X-rays (3D Slicer module).

The module is a thin shell: every computation runs in ``SwinX2SLib`` through the ``swinx2s`` command line, started
as ``PythonSlicer -m SwinX2SLib.cli ... --progress json`` in a ``qt.QProcess`` so that the GUI never freezes. The
plain-Python part of the glue (command lines, progress events, result tables, markups) is
:mod:`SwinX2SLib.slicer_support`, tested without Slicer; everything done to the scene is :mod:`SwinX2SModuleLib`
(no Qt), tested on Slicer's core (``slicer-core``). Needs Slicer 5.10 or later (Python 3.12).
"""

import importlib.util
import logging
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

import SwinX2SModuleLib
from SwinX2SLib import slicer_support
from SwinX2SModuleLib import SceneCloseWatcher, SceneLogics

INPUT_MODES = ("Two X-rays", "From CT")
CANCEL_GRACE_MS = 5000

#
# SwinX2S
#


class SwinX2S(ScriptedLoadableModule):
    """Module metadata (see ``ScriptedLoadableModule``)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("SwinX2S")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["SwinX2S developers"]
        self.parent.helpText = _("""
Reconstructs a labelled 3-D segmentation of up to 54 bones (vertebrae C1-L6, left and right ribs 1-12, sacrum,
hips, femurs) from two orthogonal radiographs with the Swin-X2S network.
<ul>
<li><b>Inputs</b>: an AP (coronal) and a lateral (sagittal) X-ray of the same patient, as single-slice volumes, with
their pixel spacing; or a CT, from which the two radiographs (DRRs) are rendered.</li>
<li><b>Outputs</b>: a segmentation with one named, coloured and terminology-coded segment per structure found, a table
of segment volumes and confidences, and on request clinical measurements (table, landmarks and femoral axes) and
3-D surfaces.</li>
<li><b>Limits</b>: the network sees a 128 x 128 x 160 grid (about 2-3 mm voxels); the shape between the two views is
inferred, not measured. Results depend on the model and on how close the images are to its training data.</li>
</ul>
<b>Research use only: not for diagnostic use without local validation.</b>
See the <a href="https://github.com/swinx2s/SlicerSwinX2S/blob/main/docs/user_guide.md">user guide</a>.
""")
        self.parent.acknowledgementText = _("""
Implements Liu K, Ying Z, Jin J, Li D, Huang P, Wu W, Chen Z, Qi J, Lu Y, Deng L, Chen B.
"Swin-X2S: Reconstructing 3D Shape from 2D Biplanar X-ray with Swin Transformers"
(reference code: https://github.com/liukuan5625/Swin-X2S). Uses PyTorch, MONAI and timm.
""")
        slicer.app.connect("startupCompleted()", loadColorTable)


def loadColorTable():
    """The SwinX2S colour table node (names, colours and terminology of the 54 structures), loaded once, and the
    SwinX2S terminology context registered with the Terminologies module."""
    logics = SceneLogics.from_application()
    SwinX2SModuleLib.register_terminology(logics)
    return SwinX2SModuleLib.load_color_table(logics)


def reloadSupportPackages() -> None:
    """Re-import :mod:`SwinX2SLib.slicer_support` and :mod:`SwinX2SModuleLib` with all their submodules (Reload)."""
    SwinX2SModuleLib.reload_package(slicer_support)
    SwinX2SModuleLib.reload_package(SwinX2SModuleLib)


_dependenciesChecked = False


def ensureDependencies() -> bool:
    """Make sure PyTorch and the Python requirements are installed, asking before installing anything.

    PyTorch comes from the PyTorch extension (``PyTorchUtils``, which picks the CUDA build for the GPU); the other
    packages of ``Resources/requirements.txt`` through ``slicer.packaging.pip_ensure`` (Slicer >= 5.12) or
    ``slicer.util.pip_install``. Called on the first Apply only, never at import time.

    Returns:
        Whether everything is available (False when the user declined or an installation failed).
    """
    global _dependenciesChecked
    if _dependenciesChecked:
        return True
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        slicer.util.errorDisplay(_("SwinX2S needs the PyTorch extension: install it with the Extensions Manager "
                                   "and restart Slicer."))
        return False
    torchLogic = PyTorchUtils.PyTorchUtilsLogic()
    if importlib.util.find_spec("torch") is None:  # torch itself is only ever imported by the subprocesses
        if not slicer.util.confirmOkCancelDisplay(_("SwinX2S needs PyTorch, which is not installed. Download and "
                                                    "install it now (1-3 GB; this can take several minutes)?")):
            return False
        torchDone = False
        with slicer.util.tryWithErrorDisplay(_("PyTorch could not be installed."), waitCursor=True):
            torchDone = torchLogic.installTorch(askConfirmation=False) is not None
        if not torchDone:
            return False
    requirements = os.path.join(os.path.dirname(__file__), "Resources", "requirements.txt")
    try:
        import slicer.packaging as packaging
    except ImportError:
        packaging = None
    installed = False
    with slicer.util.tryWithErrorDisplay(_("The Python packages could not be installed."), waitCursor=True):
        if packaging is not None:
            try:
                packaging.pip_ensure(packaging.load_requirements(requirements), requester="SwinX2S")
            except RuntimeError:  # the user declined (a failed pip run raises CalledProcessError: shown here)
                return False
        else:
            missing = slicer_support.missing_requirements(requirements)
            if missing and not slicer.util.confirmOkCancelDisplay(
                    _("SwinX2S needs these Python packages: {packages}. Install them now?").format(
                        packages=", ".join(missing))):
                return False
            if missing:
                slicer.util.pip_install(missing)
        installed = True
    if not installed:
        return False
    _dependenciesChecked = True
    return True


#
# SwinX2SParameterNode
#


@parameterNodeWrapper
class SwinX2SParameterNode:
    """The module's parameters, saved with the scene. Fields with a widget are bound through ``SlicerParameterName``.

    model: the ``--model`` value of the selected entry of the model list (empty = built-in default).
    """

    inputMode: Annotated[str, Choice(list(INPUT_MODES))] = INPUT_MODES[0]
    apVolume: vtkMRMLScalarVolumeNode
    lateralVolume: vtkMRMLScalarVolumeNode
    pixelSpacingMm: Annotated[float, WithinRange(0.0, 10.0)] = 0.0
    ctVolume: vtkMRMLScalarVolumeNode
    drrGeometry: Annotated[str, Choice(list(slicer_support.DRR_GEOMETRIES))] = "parallel"
    sourceToDetectorMm: Annotated[float, WithinRange(100.0, 5000.0)] = 1400.0
    sourceToIsocenterMm: Annotated[float, WithinRange(50.0, 5000.0)] = 1000.0
    model: str = ""
    device: Annotated[str, Choice(list(slicer_support.DEVICES))] = "auto"
    outputSegmentation: vtkMRMLSegmentationNode
    computeMeasurements: bool = True
    show3D: bool = True


#
# SwinX2SProcess
#


class SwinX2SProcess:
    """One ``swinx2s`` command running in a ``qt.QProcess``.

    Reports through plain Python callbacks (Python-defined Qt signals are unsafe in Slicer):
    ``onEvent(event)`` for every :mod:`SwinX2SLib.slicer_support` event, then once
    ``onFinished(ok, result, message)`` where ``result`` is the payload of the ``result`` event (``{}`` for a
    command that prints none, None on failure) and
    ``message`` explains a failure or a cancellation.
    """

    def __init__(self, args, onEvent: Callable, onFinished: Callable):
        self._onEvent = onEvent
        self._onFinished = onFinished
        self._parser = slicer_support.EventParser()
        self._result = None
        self._error = ""
        self._stderrTail = deque(maxlen=40)
        self._cancelled = False
        self._pids = []
        self.process = qt.QProcess()
        environment = qt.QProcessEnvironment()
        for key, value in slicer_support.subprocess_environment().items():
            environment.insert(key, value)
        self.process.setProcessEnvironment(environment)
        self.process.connect("readyReadStandardOutput()", self._readStdout)
        self.process.connect("readyReadStandardError()", self._readStderr)
        self.process.connect("finished(int,QProcess::ExitStatus)", self._finished)
        self.process.connect("errorOccurred(QProcess::ProcessError)", self._errorOccurred)
        command = slicer_support.command_line(SwinX2SLogic.pythonExecutable(), args)
        logging.info("SwinX2S: running %s", " ".join(command))
        self.process.start(command[0], command[1:])

    def isRunning(self) -> bool:
        return self.process.state() != qt.QProcess.NotRunning

    def cancel(self):
        """End the whole process tree: SIGTERM first (outputs are cleaned up), SIGKILL after a grace period."""
        if not self.isRunning():
            return
        self._cancelled = True
        self._pids = slicer_support.process_tree(int(self.process.processId()))
        slicer_support.terminate_processes(self._pids)
        qt.QTimer.singleShot(CANCEL_GRACE_MS, lambda: slicer_support.kill_processes(self._pids))

    def _dispatch(self, events):
        for event in events:
            if isinstance(event, slicer_support.ResultEvent):
                self._result = event.payload
            elif isinstance(event, slicer_support.ErrorEvent):
                self._error = event.message
            elif isinstance(event, slicer_support.LogLine):
                logging.info("swinx2s: %s", event.text)
            self._onEvent(event)

    def _readStdout(self):
        self._dispatch(self._parser.feed(bytes(self.process.readAllStandardOutput().data())))

    def _readStderr(self):
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", errors="replace")
        for line in text.splitlines():
            if line.strip():
                self._stderrTail.append(line)
                logging.info("swinx2s: %s", line)

    def _report(self, ok, result, message):
        # Deferred: the callback may drop the last reference to this object, which must outlive the Qt signal.
        qt.QTimer.singleShot(0, lambda: self._onFinished(ok, result, message))

    def _errorOccurred(self, error):
        if error == qt.QProcess.FailedToStart:
            self._report(False, None, _("could not start {program}").format(program=self.process.program()))

    def _finished(self, exitCode, exitStatus):
        self._dispatch(self._parser.finish())
        if self._cancelled:
            self._report(False, None, _("Cancelled."))
        elif exitCode == 0 and exitStatus == qt.QProcess.NormalExit:
            self._report(True, self._result or {}, "")
        else:
            details = self._error or "\n".join(self._stderrTail) or _("the command ended with status {code}").format(
                code=exitCode)
            self._report(False, None, details)


#
# SwinX2SWidget
#


class SwinX2SWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: inputs, model, outputs, Reconstruct / Cancel and progress."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._process = None
        self._workDir = None
        self._probeProcess = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SwinX2S.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SwinX2SLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.generateDrrsButton.connect("clicked(bool)", self.onGenerateDrrsButton)
        self.ui.importCheckpointButton.connect("clicked(bool)", self.onImportCheckpointButton)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelSelected)
        self.ui.progressBar.hide()

        self.initializeParameterNode()
        self.refreshModelList()
        self.probeDevices()

    def cleanup(self) -> None:
        """The module is going away: end its processes, remove its work folder and observers."""
        if self._process is not None:
            self._process.cancel()
        if self._probeProcess is not None:
            self._probeProcess.kill()
        self._removeWorkDir()
        self.removeObservers()

    def onReload(self) -> None:
        """Re-import the support packages with all their submodules too (Reload only re-runs this file)."""
        reloadSupportPackages()
        super().onReload()

    def enter(self) -> None:
        self.initializeParameterNode()
        self.refreshModelList()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode: SwinX2SParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        parameters = self._parameterNode
        if parameters is None:  # the scene is closing (or the module was never opened)
            return
        fromCt = parameters.inputMode == INPUT_MODES[1]
        self.ui.xrayGroupBox.setVisible(not fromCt)
        self.ui.ctGroupBox.setVisible(fromCt)
        perspective = parameters.drrGeometry == "perspective"
        self.ui.sourceToDetectorSpinBox.setEnabled(perspective)
        self.ui.sourceToIsocenterSpinBox.setEnabled(perspective)
        self.ui.generateDrrsButton.setEnabled(parameters.ctVolume is not None and self._process is None)
        ok, reason = self.logic.checkInputs(parameters)
        running = self._process is not None
        self.ui.applyButton.setEnabled(ok and not running)
        self.ui.applyButton.toolTip = _("Reconstruct the 3-D segmentation.") if ok else reason
        self.ui.cancelButton.setEnabled(running)

    # Model list and devices

    def refreshModelList(self, select: str = "") -> None:
        """Fill the model list from the built-in model and the models folder; keep (or set) the selection."""
        wanted = select or (self._parameterNode.model if self._parameterNode else "")
        self.ui.modelComboBox.blockSignals(True)
        self.ui.modelComboBox.clear()
        for entry in slicer_support.list_models(self.logic.modelsDirectory()):
            self.ui.modelComboBox.addItem(entry.display_name, entry.model_argument)
            self.ui.modelComboBox.setItemData(self.ui.modelComboBox.count - 1, entry.description, qt.Qt.ToolTipRole)
        index = max(self.ui.modelComboBox.findData(wanted), 0)
        self.ui.modelComboBox.setCurrentIndex(index)
        self.ui.modelComboBox.blockSignals(False)
        self.onModelSelected(index)

    def onModelSelected(self, index: int) -> None:
        if self._parameterNode is not None and index >= 0:
            self._parameterNode.model = self.ui.modelComboBox.itemData(index) or ""

    def probeDevices(self) -> None:
        """Ask PythonSlicer (not this process) which PyTorch and GPU it sees, and show it."""
        if self._probeProcess is not None:
            return
        self.ui.deviceInfoLabel.text = _("Detecting PyTorch and GPU…")
        process = qt.QProcess()
        environment = qt.QProcessEnvironment()
        for key, value in slicer_support.subprocess_environment().items():
            environment.insert(key, value)
        process.setProcessEnvironment(environment)

        def finished(exitCode, exitStatus):
            output = bytes(process.readAllStandardOutput().data()).decode("utf-8", errors="replace")
            try:
                self.ui.deviceInfoLabel.text = slicer_support.parse_device_probe(output).summary()
            except ValueError:
                self.ui.deviceInfoLabel.text = _("PyTorch not available yet (it is installed on first use).")
            qt.QTimer.singleShot(0, lambda: setattr(self, "_probeProcess", None))

        process.connect("finished(int,QProcess::ExitStatus)", finished)
        command = slicer_support.device_probe_command(SwinX2SLogic.pythonExecutable())
        process.start(command[0], command[1:])
        self._probeProcess = process

    # Running commands

    def _startCommand(self, args, onSuccess: Callable, busyMessage: str) -> None:
        """Run a command; on success call ``onSuccess(result)``, unless the scene was closed meanwhile (the command
        is then cancelled: its results belong to the closed scene)."""
        sceneWatcher = SceneCloseWatcher(slicer.mrmlScene, on_close=lambda: self.onCancelButton())

        def onFinished(ok, result, message):
            sceneWatcher.stop()
            self._process = None
            self.ui.progressBar.hide()
            if sceneWatcher.closed:
                ok, message = False, _("Cancelled: the scene was closed.")
            try:
                if ok:
                    with slicer.util.tryWithErrorDisplay(_("Failed to load the results."), waitCursor=True):
                        onSuccess(result)
                        self.ui.statusLabel.text = _("Done.")
                else:
                    self.ui.statusLabel.text = message
                    if not sceneWatcher.closed and message != _("Cancelled."):
                        slicer.util.errorDisplay(_("SwinX2S failed:") + "\n" + message)
            finally:
                if self._process is None:  # onSuccess may have started the next command on the same files
                    self._removeWorkDir()
                self._onParameterNodeModified()

        self._process = SwinX2SProcess(args, self._onEvent, onFinished)
        self.ui.progressBar.setValue(0)
        self.ui.progressBar.show()
        self.ui.statusLabel.text = busyMessage
        self._onParameterNodeModified()

    def _onEvent(self, event) -> None:
        if isinstance(event, slicer_support.ProgressEvent):
            self.ui.progressBar.setValue(round(1000 * event.fraction))
            self.ui.statusLabel.text = f"{event.stage}: {event.message}" if event.message else event.stage
        elif isinstance(event, slicer_support.WarningEvent):
            logging.warning("SwinX2S: %s", event.message)
            self.ui.statusLabel.text = _("Warning: ") + event.message

    def _newWorkDir(self) -> str:
        self._removeWorkDir()
        self._workDir = tempfile.mkdtemp(prefix="SwinX2S-", dir=slicer.app.temporaryPath)
        return self._workDir

    def _removeWorkDir(self) -> None:
        if self._workDir:
            shutil.rmtree(self._workDir, ignore_errors=True)
            self._workDir = None

    def _ensureDependenciesAndProbe(self) -> bool:
        """:func:`ensureDependencies`, then show what PyTorch sees (CUDA or not) once they are installed."""
        wasChecked = _dependenciesChecked
        ok = ensureDependencies()
        if ok and not wasChecked:
            self.probeDevices()
        return ok

    def onApplyButton(self) -> None:
        parameters = self._parameterNode
        segmentation = parameters.outputSegmentation
        count = segmentation.GetSegmentation().GetNumberOfSegments() if segmentation is not None else 0
        if count and not slicer.util.confirmOkCancelDisplay(
                _("Replace the {count} segments of '{name}' with the reconstruction?").format(
                    count=count, name=segmentation.GetName())):
            return
        if not self._ensureDependenciesAndProbe():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the reconstruction."), waitCursor=True):
            workDir = self._newWorkDir()
            args = self.logic.reconstructArguments(parameters, workDir)
            self._startCommand(args, lambda result: self.logic.loadReconstruction(result, parameters),
                               _("Starting the reconstruction…"))

    def onGenerateDrrsButton(self) -> None:
        if not self._ensureDependenciesAndProbe():
            return
        parameters = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Failed to start the DRR rendering."), waitCursor=True):
            workDir = self._newWorkDir()
            args = self.logic.drrArguments(parameters, workDir)
            self._startCommand(args, lambda result: self.logic.loadDrrs(result, parameters),
                               _("Rendering the radiographs…"))

    def onImportCheckpointButton(self) -> None:
        checkpoint = qt.QFileDialog.getOpenFileName(
            slicer.util.mainWindow(), _("Published Swin-X2S checkpoint"), "", _("PyTorch checkpoint (*.pt *.pth)"))
        if not checkpoint:
            return
        automatic = _("automatic (from the checkpoint)")
        choices = [automatic, *slicer_support.MODEL_VARIANTS]
        variant = qt.QInputDialog.getItem(slicer.util.mainWindow(), _("Import checkpoint"),
                                          _("Network variant of the checkpoint:"), choices, 0, False)
        if not variant or not self._ensureDependenciesAndProbe():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the checkpoint import."), waitCursor=True):
            params = slicer_support.ModelImportParameters(
                checkpoint=checkpoint,
                output_dir=str(slicer_support.unique_model_dir(self.logic.modelsDirectory(), Path(checkpoint).stem)),
                variant="" if variant == automatic else variant)
            self._startCommand(params.as_arg_list(),
                               lambda result: self.refreshModelList(select=params.output_dir),
                               _("Importing the checkpoint…"))

    def onCancelButton(self) -> None:
        if self._process is not None:
            self.ui.statusLabel.text = _("Cancelling…")
            self._process.cancel()


#
# SwinX2SLogic
#


class SwinX2SLogic(ScriptedLoadableModuleLogic):
    """Everything the module does, usable without the GUI (also from the Python console and the tests).

    Usage::

        logic = SwinX2SLogic()
        parameters = logic.getParameterNode()
        parameters.apVolume, parameters.lateralVolume = apNode, lateralNode
        workDir = tempfile.mkdtemp()
        result = logic.run(logic.reconstructArguments(parameters, workDir))   # blocking
        loaded = logic.loadReconstruction(result, parameters)   # loaded.segmentation, loaded.segment_table, ...
    """

    def getParameterNode(self) -> SwinX2SParameterNode:
        return SwinX2SParameterNode(super().getParameterNode())

    @staticmethod
    def pythonExecutable() -> str:
        """Slicer's own Python interpreter (``PythonSlicer``), which runs the ``swinx2s`` command line."""
        executable = shutil.which("PythonSlicer")
        if not executable:
            raise RuntimeError("PythonSlicer was not found on the PATH of this Slicer installation")
        return executable

    @staticmethod
    def modelsDirectory() -> Path:
        """Where imported and fine-tuned models are kept (``SWINX2S_MODELS_DIR`` overrides it)."""
        return slicer_support.models_directory(Path(slicer.app.slicerUserSettingsFilePath).parent / "SwinX2S")

    @staticmethod
    def checkInputs(parameters: SwinX2SParameterNode) -> tuple:
        """(ok, reason): whether Reconstruct can run with these parameters."""
        if parameters.inputMode == INPUT_MODES[1]:
            return (True, "") if parameters.ctVolume else (False, _("Select a CT volume."))
        if not parameters.apVolume or not parameters.lateralVolume:
            return False, _("Select the AP and the lateral X-ray.")
        if parameters.apVolume == parameters.lateralVolume:
            return False, _("The AP and the lateral X-ray must be different volumes.")
        return True, ""

    def reconstructArguments(self, parameters: SwinX2SParameterNode, workDir: str) -> list:
        """Write the input nodes into ``workDir`` and return the ``swinx2s reconstruct`` arguments."""
        fromCt = parameters.inputMode == INPUT_MODES[1]
        inputs = {"ct": parameters.ctVolume} if fromCt else {"ap": parameters.apVolume,
                                                             "lateral": parameters.lateralVolume}
        return SwinX2SModuleLib.reconstruct_request(
            workDir, pixel_spacing_mm=parameters.pixelSpacingMm, model=parameters.model, device=parameters.device,
            measure=parameters.computeMeasurements, **inputs).as_arg_list()

    def drrArguments(self, parameters: SwinX2SParameterNode, workDir: str) -> list:
        """Write the CT into ``workDir`` and return the ``swinx2s drr`` arguments."""
        return SwinX2SModuleLib.drr_request(workDir, parameters.ctVolume, parameters.drrGeometry,
                                            parameters.sourceToDetectorMm,
                                            parameters.sourceToIsocenterMm).as_arg_list()

    def run(self, args) -> dict:
        """Run a ``swinx2s`` command and wait for it (for scripts and tests; the widget uses ``SwinX2SProcess``).

        Returns:
            The payload of the command's ``result`` event.
        """
        import subprocess

        command = slicer_support.command_line(self.pythonExecutable(), args)
        completed = subprocess.run(command, env=slicer_support.subprocess_environment(), capture_output=True)
        parser = slicer_support.EventParser()
        events = parser.feed(completed.stdout) + parser.finish()
        results = [e.payload for e in events if isinstance(e, slicer_support.ResultEvent)]
        if completed.returncode != 0 or not results:
            errors = [e.message for e in events if isinstance(e, slicer_support.ErrorEvent)]
            detail = errors[-1] if errors else completed.stderr.decode("utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"swinx2s {args[0]} failed: {detail}")
        return results[-1]

    def loadDrrs(self, result: dict, parameters: SwinX2SParameterNode) -> tuple:
        """Load the two rendered radiographs into a new ``SwinX2S DRRs <n>`` folder, placed on their detector
        planes, and select them as the inputs."""
        logics = SceneLogics.from_application()
        nodes = SwinX2SModuleLib.load_drrs(logics, result, SwinX2SModuleLib.new_run_folder(logics, "SwinX2S DRRs"))
        parameters.apVolume, parameters.lateralVolume = nodes
        return nodes

    def loadReconstruction(self, result: dict, parameters: SwinX2SParameterNode):
        """Load a ``reconstruct`` result into a new ``SwinX2S <n>`` folder: the segmentation (the chosen output
        segmentation, or a new one), its table and, with ``computeMeasurements``, the measurement table and markups.

        Returns:
            The :class:`SwinX2SModuleLib.LoadedReconstruction`.
        """
        fromCt = parameters.inputMode == INPUT_MODES[1]
        loaded = SwinX2SModuleLib.load_reconstruction(
            SceneLogics.from_application(), result, segmentation=parameters.outputSegmentation,
            reference=parameters.ctVolume if fromCt else None, measurements=parameters.computeMeasurements,
            surfaces=parameters.show3D)
        return loaded


#
# SwinX2STest
#


class SwinX2STest(ScriptedLoadableModuleTest):
    """Fast checks of the module logic; the end-to-end tests are in ``Testing/Python``."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ColorTable()
        self.setUp()
        self.test_ParameterChecks()

    def test_ColorTable(self):
        """The colour table loads once and names the catalogue structures."""
        first = loadColorTable()
        self.assertIs(loadColorTable(), first)
        self.assertEqual(first.GetColorName(53), "Left femur")
        self.assertGreaterEqual(first.GetNumberOfColors(), 55)

    def test_ParameterChecks(self):
        """Reconstruct stays disabled until two different X-rays (or a CT) are chosen; the inputs are written to
        files and the command line follows the input mode."""
        import numpy as np

        logic = SwinX2SLogic()
        parameters = logic.getParameterNode()
        self.assertFalse(logic.checkInputs(parameters)[0])
        volumes = []
        for name in ("ap", "lateral"):
            volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
            slicer.util.updateVolumeFromArray(volume, np.random.default_rng(0).random((1, 40, 30), dtype=np.float32))
            volume.SetSpacing(0.5, 0.5, 1.0)
            volumes.append(volume)
        parameters.apVolume = parameters.lateralVolume = volumes[0]
        self.assertFalse(logic.checkInputs(parameters)[0])
        parameters.lateralVolume = volumes[1]
        self.assertTrue(logic.checkInputs(parameters)[0])
        workDir = tempfile.mkdtemp(dir=slicer.app.temporaryPath)
        try:
            args = logic.reconstructArguments(parameters, workDir)
            self.assertEqual(args[:2], ["reconstruct", "--coronal"])
            for option in ("--coronal", "--sagittal"):
                self.assertTrue(os.path.isfile(args[args.index(option) + 1]))
            parameters.inputMode = INPUT_MODES[1]
            self.assertFalse(logic.checkInputs(parameters)[0])
            parameters.ctVolume = volumes[0]
            self.assertIn("--ct", logic.reconstructArguments(parameters, workDir))
        finally:
            shutil.rmtree(workDir, ignore_errors=True)
