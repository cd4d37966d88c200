"""Running falconet (with the ticker test plugin) in a subprocess, and waiting on its files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
FIELDS_TSV = SHARED / "upstream" / "fields" / "fields.tsv"
#: how long a test waits for something falconet must do before it fails (a deadline, not a
#: measurement: nothing asserts how fast it happened)
DEADLINE_S = 30.0


def falconet(args: Sequence[str], cwd: Path = REPO) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "tests.engine.run_app", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(what: str, predicate: Callable[[], bool],
               proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if proc is not None and proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"falconet exited ({proc.returncode}) before {what}:\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def ticker_config(tmp: Path, rules: Path, capture: Path, *, open_params: str,
                  extra: str = "") -> Path:
    config = tmp / "falco.yaml"
    config.write_text(f"""\
plugins:
  - name: ticker
    open_params: '{open_params}'
load_plugins: [ticker]
rules_files: [{rules}]
stdout_output: {{enabled: false}}
syslog_output: {{enabled: false}}
webserver: {{enabled: false}}
watch_config_files: false
output_timeout: 1000
capture_output:
  enabled: true
  path: {capture}
{extra}""")
    return config


def rule(name: str, proc_name: str, priority: str = "WARNING") -> str:
    return f"""\
- rule: {name}
  desc: {name}
  condition: proc.name = {proc_name}
  output: "{name} (name=%proc.name)"
  priority: {priority}
  source: ticker
"""


def ticker_files(tmp: Path, rules_text: str, open_params: str, *,
                 extra: str = "") -> tuple[Path, Path, Path]:
    """(rules file, capture file, falco.yaml) for a run of the ticker source on ``rules_text``."""
    rules = tmp / "rules.yaml"
    rules.write_text(rules_text)
    capture = tmp / "alerts.txt"
    return rules, capture, ticker_config(tmp, rules, capture, open_params=open_params,
                                         extra=extra)
