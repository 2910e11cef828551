"""Noticing that the scene was closed (File > Close Scene) while a command was running."""

from __future__ import annotations

from collections.abc import Callable

import slicer


class SceneCloseWatcher:
    """Watches one scene from the start of a run: :attr:`closed` turns True when the scene starts closing, and
    ``on_close`` (e.g. "cancel the process") is called once. The run's results must then not be loaded: they
    belong to the closed scene.

    Args:
        scene: the scene the run's results go to.
        on_close: called when the scene starts closing (optional).

    Example::

        watcher = SceneCloseWatcher(scene, on_close=process.cancel)
        ...                                   # when the process ends:
        if not watcher.closed:
            load_reconstruction(...)
        watcher.stop()
    """

    def __init__(self, scene: slicer.vtkMRMLScene, on_close: Callable[[], None] | None = None) -> None:
        self.scene = scene
        self.closed = False
        self._on_close = on_close
        self._tag = scene.AddObserver(slicer.vtkMRMLScene.StartCloseEvent, self._started_closing)

    def _started_closing(self, caller: object = None, event: object = None) -> None:
        if self.closed:
            return
        self.closed = True
        if self._on_close is not None:
            self._on_close()

    def stop(self) -> None:
        """Stop watching (call when the run is over)."""
        if self._tag is not None:
            self.scene.RemoveObserver(self._tag)
            self._tag = None
