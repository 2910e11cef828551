"""SwinX2STrain: fine-tune a Swin-X2S model on your own data (3D Slicer module).

Training runs as ``PythonSlicer -m SwinX2SLib.cli train ... --progress json`` (started through
:class:`SwinX2S.SwinX2SProcess`); the loss and validation Dice are plotted live from the run's JSON-lines log. The
plain-Python parts (configuration, command lines, log reading) are in :mod:`SwinX2SLib.slicer_support`, the chart
and its tables in :mod:`SwinX2SModuleLib`. Needs Slicer 5.10 or later (Python 3.12).
"""

import logging
import os
from pathlib import Path
from typing import Annotated

import qt
import slicer
import vtk
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
from SwinX2S import SwinX2SLogic, SwinX2SProcess, ensureDependencies, reloadSupportPackages
from SwinX2SLib import slicer_support

PLOT_REFRESH_MS = 2000

#
# SwinX2STrain
#


class SwinX2STrain(ScriptedLoadableModule):
    """Module metadata (see ``ScriptedLoadableModule``)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("SwinX2S Train")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["SwinX2S"]
        self.parent.contributors = ["SwinX2S developers"]
        self.parent.helpText = _("""
Fine-tunes (or trains) a Swin-X2S model on a dataset: published Swin-X2S preprocessed data (a folder with
data_list.json) or CT cases with labels, rendered to radiograph pairs on the fly; without a dataset it trains on
procedural phantoms. The loss and the validation Dice are plotted while the run goes on; Stop keeps the run so that
Resume can continue it. The model of a finished run appears in the SwinX2S module's model list.
A GPU is strongly recommended. Research use only.
See the <a href="https://github.com/swinx2s/SlicerSwinX2S/blob/main/docs/user_guide.md">user guide</a>.
""")
        self.parent.acknowledgementText = _("""
Implements the training recipe of Liu K et al., "Swin-X2S: Reconstructing 3D Shape from 2D Biplanar X-ray with Swin
Transformers" (reference code: https://github.com/liukuan5625/Swin-X2S).
""")


#
# SwinX2STrainParameterNode
#


@parameterNodeWrapper
class SwinX2STrainParameterNode:
    """The module's parameters (``baseModel`` is the model folder of the selected base-model entry)."""

    datasetDir: Path
    baseModel: str = ""
    modelName: str = "my_model"
    preset: Annotated[str, Choice(list(slicer_support.TRAIN_PRESETS))] = "finetune"
    epochs: Annotated[int, WithinRange(1, 10000)] = 30
    learningRate: Annotated[float, WithinRange(1e-7, 1.0)] = 1e-5
    batchSize: Annotated[int, WithinRange(1, 64)] = 1
    device: Annotated[str, Choice(list(slicer_support.DEVICES))] = "auto"


#
# SwinX2STrainWidget
#


class SwinX2STrainWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: data, base model, hyper-parameters, Start / Stop / Resume, live curves and ETA."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._process = None
        self._runDir = None
        self._plotTimer = qt.QTimer()
        self._plotTimer.setInterval(PLOT_REFRESH_MS)
        self._plotTimer.connect("timeout()", self.updatePlot)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SwinX2STrain.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SwinX2STrainLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.startButton.connect("clicked(bool)", self.onStartButton)
        self.ui.stopButton.connect("clicked(bool)", self.onStopButton)
        self.ui.resumeButton.connect("clicked(bool)", self.onResumeButton)
        self.ui.baseModelComboBox.connect("currentIndexChanged(int)", self.onBaseModelSelected)

        self.initializeParameterNode()
        self.refreshBaseModels()

    def cleanup(self) -> None:
        self._plotTimer.stop()
        if self._process is not None:
            self._process.cancel()
        self.removeObservers()

    def onReload(self) -> None:
        """Re-import the support packages with all their submodules too (Reload only re-runs this file)."""
        reloadSupportPackages()
        super().onReload()

    def enter(self) -> None:
        self.initializeParameterNode()
        self.refreshBaseModels()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode: SwinX2STrainParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()

    def refreshBaseModels(self) -> None:
        wanted = self._parameterNode.baseModel if self._parameterNode else ""
        combo = self.ui.baseModelComboBox
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(_("None (train from scratch)"), "")
        for entry in slicer_support.list_models(SwinX2SLogic.modelsDirectory()):
            combo.addItem(entry.display_name, entry.model_argument)
        combo.setCurrentIndex(max(combo.findData(wanted), 0) if wanted else min(1, combo.count - 1))
        combo.blockSignals(False)
        self.onBaseModelSelected(combo.currentIndex)

    def onBaseModelSelected(self, index: int) -> None:
        if self._parameterNode is not None and index >= 0:
            self._parameterNode.baseModel = self.ui.baseModelComboBox.itemData(index) or ""

    def _updateButtons(self, caller=None, event=None) -> None:
        if self._parameterNode is None:  # the scene is closing (or the module was never opened)
            return
        running = self._process is not None
        ok, reason = self.logic.parameters(self._parameterNode).is_valid()
        self.ui.startButton.setEnabled(ok and not running)
        self.ui.startButton.toolTip = _("Start a new training run.") if ok else reason
        self.ui.stopButton.setEnabled(running)
        self.ui.resumeButton.setEnabled(not running and self.logic.existingRun(self._parameterNode) is not None)

    def onStartButton(self) -> None:
        if not ensureDependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the training."), waitCursor=True):
            parameters = self.logic.parameters(self._parameterNode)
            configPath = os.path.join(slicer.app.temporaryPath, f"SwinX2STrain-{Path(parameters.run_dir).name}.json")
            parameters.write_config(configPath)
            self._run(parameters.run_dir, parameters.as_arg_list(configPath))

    def onResumeButton(self) -> None:
        runDir = self.logic.existingRun(self._parameterNode)
        if runDir is None or not ensureDependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to resume the training."), waitCursor=True):
            slicer_support.clear_stop_request(runDir)
            self._run(str(runDir), slicer_support.resume_arg_list(runDir))

    def onStopButton(self) -> None:
        if self._runDir:
            slicer_support.request_stop(self._runDir)
            self.ui.statusLabel.text = _("Stopping after the current step…")

    def _run(self, runDir: str, args) -> None:
        self._runDir = runDir
        self.ui.progressBar.setValue(0)
        self.ui.statusLabel.text = _("Starting the training…")
        self._process = SwinX2SProcess(args, self._onEvent, self._onFinished)
        self._plotTimer.start()
        self._updateButtons()

    def _onEvent(self, event) -> None:
        if isinstance(event, slicer_support.ProgressEvent):
            self.ui.progressBar.setValue(round(1000 * event.fraction))
            self.ui.statusLabel.text = f"{event.stage}: {event.message}" if event.message else event.stage
        elif isinstance(event, slicer_support.WarningEvent):
            logging.warning("SwinX2STrain: %s", event.message)

    def _onFinished(self, ok, result, message) -> None:
        self._process = None
        self._plotTimer.stop()
        self.updatePlot()
        if ok:
            reason = result.get("stop_reason", "")
            self.ui.statusLabel.text = _("Training ended ({reason}); best validation {metric}.").format(
                reason=reason, metric=result.get("best_metric"))
            swinx2sWidget = slicer.modules.swinx2s.widgetRepresentation().self()
            swinx2sWidget.refreshModelList()
        else:
            self.ui.statusLabel.text = message
            slicer.util.errorDisplay(_("Training failed:") + "\n" + message)
        self._updateButtons()

    def updatePlot(self) -> None:
        """Redraw the loss / Dice chart and the ETA from the run's log."""
        if not self._runDir:
            return
        curves = slicer_support.read_training_curves(self._runDir)
        self.logic.showCurves(Path(self._runDir).name, curves)
        if self._process is not None:
            self.ui.etaLabel.text = _("Epoch {epoch}, time left: {eta}").format(
                epoch=curves.epoch, eta=slicer_support.format_duration(curves.eta_s))
        else:
            self.ui.etaLabel.text = _("Epoch {epoch}").format(epoch=curves.epoch)


#
# SwinX2STrainLogic
#


class SwinX2STrainLogic(ScriptedLoadableModuleLogic):
    """Training logic, usable without the GUI (from the Python console and the tests)."""

    def getParameterNode(self) -> SwinX2STrainParameterNode:
        return SwinX2STrainParameterNode(super().getParameterNode())

    @staticmethod
    def existingRun(parameterNode: SwinX2STrainParameterNode) -> Path | None:
        """The folder of the last run started for this model name (``runs/<name>-2`` after a second Start), which
        Resume continues; None when there is none."""
        if parameterNode is None or not parameterNode.modelName:
            return None
        return slicer_support.latest_run_dir(SwinX2SLogic.modelsDirectory(), parameterNode.modelName)

    @staticmethod
    def parameters(parameterNode: SwinX2STrainParameterNode) -> slicer_support.TrainParameters:
        """The training parameters of a new run (its folder is a fresh one under the models folder)."""
        dataset = str(parameterNode.datasetDir) if parameterNode.datasetDir else ""
        return slicer_support.TrainParameters(
            run_dir=str(slicer_support.unique_model_dir(SwinX2SLogic.modelsDirectory(), parameterNode.modelName,
                                                        "finetuned")) if parameterNode.modelName else "",
            dataset_dir="" if dataset in ("", ".") else dataset,
            base_model=parameterNode.baseModel,
            preset=parameterNode.preset,
            epochs=parameterNode.epochs,
            learning_rate=parameterNode.learningRate,
            batch_size=parameterNode.batchSize,
            device=parameterNode.device,
            model_name=parameterNode.modelName,
        )

    @staticmethod
    def showCurves(name: str, curves: "slicer_support.TrainingCurves"):
        """Show the loss per step and the validation Dice per epoch in a plot chart; returns the chart node."""
        chart = SwinX2SModuleLib.training_chart(slicer.mrmlScene, name, curves,
                                                title=_("Training of {name}").format(name=name),
                                                x_title=_("step"), y_title=_("loss / Dice"))
        slicer.modules.plots.logic().ShowChartInLayout(chart)
        return chart


#
# SwinX2STrainTest
#


class SwinX2STrainTest(ScriptedLoadableModuleTest):
    """Fast checks of the module logic; the training run itself is tested in ``Testing/Python``."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_Parameters()

    def test_Parameters(self):
        """Parameter node values become a valid training configuration for phantoms."""
        logic = SwinX2STrainLogic()
        node = logic.getParameterNode()
        node.modelName = "selftest"
        node.baseModel = ""
        node.epochs = 1
        parameters = logic.parameters(node)
        self.assertTrue(parameters.is_valid()[0], parameters.is_valid()[1])
        self.assertEqual(parameters.data_source, "phantom")
        self.assertEqual(parameters.config()["optim"]["epochs"], 1)
        self.assertIn("--config", parameters.as_arg_list("config.json"))
