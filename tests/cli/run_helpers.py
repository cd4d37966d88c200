"""The ``falconet`` command in-process for tests: ``invoke`` runs it with click's runner, and
``captured_runs`` replaces ``falconet.app.run`` so a test sees the ``RunOptions`` the flags
became without running anything."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import falconet.app
from falconet.app import RunOptions
from falconet.cli import main


def invoke(*args: str) -> tuple[int, str]:
    """``falconet ARGS``: (exit code, output)."""
    result = CliRunner().invoke(main, list(args), prog_name="falconet")
    return result.exit_code, result.output


def captured_runs(monkeypatch: pytest.MonkeyPatch) -> list[RunOptions]:
    """The ``RunOptions`` of every run the command starts from now on (none is started)."""
    seen: list[RunOptions] = []

    def run(options: RunOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(falconet.app, "run", run)
    return seen
