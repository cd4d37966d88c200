"""A progress bar over the log files of a replay (rich, on stderr), or nothing.

Upstream reports ``NN.NN% - x/y files``; the bar shows the same count, the bytes read and the
time left. rich is imported only when a bar is wanted (a terminal), so replays in scripts and
services pay nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Progress"]


class Progress:
    """``advance(nbytes)`` once per file read; ``stop()`` at the end."""

    def __init__(self, enabled: bool, files: Sequence[Path]) -> None:
        self.bar: Any = None
        self.read = 0
        if not enabled or not files:
            return
        from rich.console import Console
        from rich.filesize import decimal
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        self._size = decimal
        self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                TaskProgressColumn(), MofNCompleteColumn(), TextColumn("files"),
                                TextColumn("{task.fields[read]}"), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True)
        self.task = self.bar.add_task("aws_cloudtrail", total=len(files), read="")
        self.bar.start()

    def advance(self, nbytes: int) -> None:
        if self.bar is not None:
            self.read += nbytes
            self.bar.update(self.task, advance=1, read=self._size(self.read))

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
