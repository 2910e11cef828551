"""In-Slicer end-to-end test of the SwinX2S module: phantom CT -> DRRs -> Reconstruct -> segments and tables.

Runs inside Slicer (``ctest -R SwinX2SSelfTest`` in the build tree, or Reload & Test). It uses the built-in
default model on the CPU and takes about a minute.
"""

import os
import shutil
import tempfile

import numpy as np
import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from SwinX2S import INPUT_MODES, SwinX2SLogic, loadColorTable
from SwinX2SLib import catalogue, slicer_support


class SwinX2SSelfTest(ScriptedLoadableModuleTest):
    """Phantom -> DRRs -> Reconstruct, checked on the scene the module leaves."""

    def setUp(self):
        slicer.mrmlScene.Clear()
        self.workDir = tempfile.mkdtemp(prefix="SwinX2SSelfTest-", dir=slicer.app.temporaryPath)

    def tearDown(self):
        shutil.rmtree(self.workDir, ignore_errors=True)

    def runTest(self):
        self.setUp()
        try:
            self.test_PhantomToSegmentation()
        finally:
            self.tearDown()

    def test_PhantomToSegmentation(self):
        logic = SwinX2SLogic()
        parameters = logic.getParameterNode()
        parameters.device = "cpu"

        self.delayDisplay("Phantom CT")
        phantom = logic.run(["phantom", "-o", os.path.join(self.workDir, "phantom"), "--seed", "7",
                             "--progress", "json"])
        files = slicer_support.result_files(phantom)
        ctNode = slicer.util.loadVolume(files["ct.nii.gz"])
        parameters.inputMode = INPUT_MODES[1]
        parameters.ctVolume = ctNode

        self.delayDisplay("DRRs placed on their detector planes")
        drrDir = os.path.join(self.workDir, "drr")
        os.makedirs(drrDir)
        apNode, lateralNode = logic.loadDrrs(logic.run(logic.drrArguments(parameters, drrDir)), parameters)
        self.assertIs(parameters.apVolume, apNode)
        self.assertIs(parameters.lateralVolume, lateralNode)
        apNormal = np.array([apNode.GetIJKToRASMatrix().GetElement(row, 2) for row in range(3)])
        lateralNormal = np.array([lateralNode.GetIJKToRASMatrix().GetElement(row, 2) for row in range(3)])
        self.assertAlmostEqual(abs(apNormal[1]), 1.0, places=3)  # AP beam runs along anterior-posterior
        self.assertAlmostEqual(abs(lateralNormal[0]), 1.0, places=3)  # lateral beam runs along left-right

        self.delayDisplay("Reconstruct from the two DRR volumes")
        parameters.inputMode = INPUT_MODES[0]
        parameters.computeMeasurements = True
        parameters.show3D = True
        nodesBefore = slicer.mrmlScene.GetNumberOfNodes()
        reconstructDir = os.path.join(self.workDir, "reconstruct")
        os.makedirs(reconstructDir)
        result = logic.run(logic.reconstructArguments(parameters, reconstructDir))  # with --measure
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore, "running the command changed the scene")
        loaded = logic.loadReconstruction(result, parameters)
        segmentationNode = loaded.segmentation

        self.delayDisplay("Segments named, coloured and coded from the colour table, in the run's folder")
        reconstruction = slicer_support.read_reconstruction_result(result)
        colorNode = loadColorTable()
        segmentation = segmentationNode.GetSegmentation()
        names = {segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())}
        self.assertEqual(names, {catalogue.by_id(s.id).display_name for s in reconstruction.segments})
        self.assertTrue(names, "the reconstruction of a phantom found no bone")
        for index in range(segmentation.GetNumberOfSegments()):
            segment = segmentation.GetNthSegment(index)
            label = colorNode.GetColorIndexByName(segment.GetName())
            rgba = [0.0] * 4
            colorNode.GetColor(label, rgba)
            np.testing.assert_allclose(segment.GetColor(), rgba[:3], atol=1e-3)
            self.assertEqual(segment.GetTerminology(), catalogue.by_id(label).terminology.slicer_string())
        self.assertTrue(segmentationNode.GetSegmentation().ContainsRepresentation("Closed surface"))
        self.assertEqual(loaded.folder.nodes()[0], segmentationNode)

        self.delayDisplay("Segment and measurement tables")
        self.assertEqual(loaded.segment_table.GetNumberOfRows(), len(reconstruction.segments))
        self.assertGreater(loaded.measurement_table.GetNumberOfRows(), 0)

        self.delayDisplay("A second run goes into its own folder")
        second = logic.loadReconstruction(result, parameters)
        self.assertNotEqual(second.folder.item, loaded.folder.item)
        self.assertEqual(loaded.segment_table.GetNumberOfRows(), len(reconstruction.segments))
        self.delayDisplay("Test passed")
