"""The progress bar of long replays: rich, on stderr, over the bytes read; or nothing.

Used by the generic JSON-lines reader and by plugins' own readers (``SourceContext.progress``
says whether to show one: ``--progress``/``--no-progress``, else whether stderr is a terminal).
rich is imported only when a bar is shown, so replays in scripts and services pay nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProgressBar"]


class ProgressBar:
    """``update(completed)`` with the bytes read so far; ``stop()`` at the end (idempotent)."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.bar: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.task = self.bar.add_task(label, total=total)
        self.bar.start()

    def update(self, completed: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=completed)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
