"""In-Slicer test of the SwinX2STrain module: a short fine-tuning run on two phantoms gives a usable model.

Runs inside Slicer (``ctest -R SwinX2STrainSelfTest`` in the build tree, or Reload & Test). The models folder is
redirected to a temporary folder (``SWINX2S_MODELS_DIR``); the run starts from the built-in default model.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from SwinX2S import SwinX2SLogic
from SwinX2SLib import slicer_support
from SwinX2STrain import SwinX2STrainLogic


class SwinX2STrainSelfTest(ScriptedLoadableModuleTest):
    """Fine-tune for one epoch on two phantoms, then find and use the new model."""

    def setUp(self):
        slicer.mrmlScene.Clear()
        self.workDir = tempfile.mkdtemp(prefix="SwinX2STrainSelfTest-", dir=slicer.app.temporaryPath)
        self.previousModelsDir = os.environ.get(slicer_support.MODELS_DIR_ENV)
        os.environ[slicer_support.MODELS_DIR_ENV] = os.path.join(self.workDir, "models")

    def tearDown(self):
        if self.previousModelsDir is None:
            os.environ.pop(slicer_support.MODELS_DIR_ENV, None)
        else:
            os.environ[slicer_support.MODELS_DIR_ENV] = self.previousModelsDir
        shutil.rmtree(self.workDir, ignore_errors=True)

    def runTest(self):
        self.setUp()
        try:
            self.test_FineTuneOnPhantoms()
        finally:
            self.tearDown()

    def test_FineTuneOnPhantoms(self):
        logic = SwinX2STrainLogic()
        node = logic.getParameterNode()
        builtin = [m for m in slicer_support.list_models(None) if m.kind == "builtin"]
        self.assertTrue(builtin, "no built-in model to fine-tune")
        node.baseModel = builtin[0].model_argument
        node.modelName = "selftest"
        node.epochs = 1
        node.device = "cpu"
        parameters = logic.parameters(node)
        self.assertEqual(parameters.data_source, "phantom")

        self.delayDisplay("Fine-tuning for one epoch on two phantoms")
        config = parameters.write_config(os.path.join(self.workDir, "config.json"))
        result = SwinX2SLogic().run(parameters.as_arg_list(config))
        self.assertEqual(Path(result["run_dir"]).resolve(), Path(parameters.run_dir).resolve())

        curves = slicer_support.read_training_curves(parameters.run_dir)
        self.assertGreater(len(curves.steps), 0)
        chart = logic.showCurves("selftest", curves)
        self.assertEqual(chart.GetNumberOfPlotSeriesNodes(), 2)

        self.delayDisplay("The new model is listed and loads")
        finetuned = [m for m in slicer_support.list_models(SwinX2SLogic.modelsDirectory()) if m.kind == "finetuned"]
        self.assertEqual([m.display_name for m in finetuned], ["selftest (fine-tuned)"])
        command = slicer_support.command_line(SwinX2SLogic.pythonExecutable(),
                                              ["model", "info", finetuned[0].model_argument])
        check = subprocess.run(command, env=slicer_support.subprocess_environment(), capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)  # weights hash and class table verified
        self.delayDisplay("Test passed")
