"""The ``falconet`` command as a user runs it: validation, listing, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
UPSTREAM_RULES = SHARED / "upstream" / "rules"
BUNDLED = "rules/falconet_rules.yaml"  # rules/ also holds the default falco.yaml

pytestmark = pytest.mark.skipif(
    not (SHARED / "upstream" / "fields" / "fields.tsv").is_file(),
    reason="needs ../shared/upstream (upstream field list and rules files)",
)


def falconet(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "falconet.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=120,
    )


def test_version() -> None:
    res = falconet("--version")
    assert res.returncode == 0
    assert res.stdout.splitlines()[0].startswith("falconet version: ")


def test_bundled_rules_validate_ok() -> None:
    res = falconet("--validate", BUNDLED)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "rules/falconet_rules.yaml: Ok"


@pytest.mark.parametrize(
    "name",
    ["falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml",
     "k8s_audit_rules.yaml", "aws_cloudtrail_rules.yaml"],
)
def test_upstream_rules_files_validate_without_errors(name: str) -> None:
    res = falconet("--validate", str(UPSTREAM_RULES / name), "-o", "json_output=true")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    doc = orjson.loads(res.stdout)
    (result,) = doc["falco_load_results"]
    assert result["successful"] is True
    assert result["errors"] == []


def test_broken_rule_gives_exit_1_code_line_and_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- rule: broken\n"
        "  desc: a rule with a typo\n"
        "  condition: evt.type = open and and proc.name = bash\n"
        "  output: x\n"
        "  priority: INFO\n"
    )
    res = falconet("--validate", str(bad), "-o", "json_output=true")
    assert res.returncode == 1
    (result,) = orjson.loads(res.stdout)["falco_load_results"]
    assert result["successful"] is False
    (error,) = result["errors"]
    assert error["code"] == "LOAD_ERR_COMPILE_CONDITION"
    positions = [loc["position"] for loc in error["context"]["locations"]]
    assert positions[-1]["line"] == 3
    text = falconet("--validate", str(bad))
    assert text.returncode == 1
    assert text.stdout.startswith(f"{bad}: Invalid")
    assert "LOAD_ERR_COMPILE_CONDITION" in text.stdout


def test_list_rules_table() -> None:
    res = falconet("-r", BUNDLED, "-L")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"{'Rule':<50} Description"
    assert lines[1] == f"{'----':<50} -----------"
    assert any(line.startswith("Kernel module loaded ") for line in lines)


def test_describe_one_rule_json() -> None:
    res = falconet("-r", BUNDLED, "-l", "Kernel module loaded", "-o", "json_output=true")
    assert res.returncode == 0, res.stderr
    (rule,) = orjson.loads(res.stdout)["rules"]
    assert rule["info"]["name"] == "Kernel module loaded"
    assert rule["info"]["priority"] == "Warning"
    assert rule["details"]["condition_compiled"] == (
        "(evt.type in (init_module, finit_module) and evt.res = SUCCESS)"
    )
    assert rule["details"]["events"] == ["asyncevent", "finit_module", "init_module"]


def test_describe_unknown_rule_fails() -> None:
    res = falconet("-r", BUNDLED, "-l", "no such rule")
    assert res.returncode == 1
    assert res.stderr.strip() == 'Rule "no such rule" is not loaded'


def test_unknown_config_key_warns_and_goes_on() -> None:
    res = falconet("-o", "stdout_outptu.enabled=true", "-L", "-r", BUNDLED)
    assert res.returncode == 0
    assert "Warning: unknown configuration key 'stdout_outptu' (ignored)" in res.stderr


def test_wrong_config_type_fails_with_the_key_path() -> None:
    res = falconet("-o", "priority=loud", "-L", "-r", BUNDLED)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        "Error: priority: expected one of emergency, alert, critical, error, warning, notice, "
        "informational, debug, got 'loud'")


def test_config_file_and_overrides_choose_rules_and_json(tmp_path: Path) -> None:
    config = tmp_path / "falco.yaml"
    config.write_text(f"rules_files: [{ROOT / BUNDLED}]\njson_output: false\n")
    res = falconet("-c", str(config), "-o", "json_output=true", "-l", "Kernel module loaded")
    assert res.returncode == 0, res.stderr
    (rule,) = orjson.loads(res.stdout)["rules"]
    assert rule["info"]["name"] == "Kernel module loaded"


def test_describe_lists_output_fields() -> None:
    res = falconet("-r", BUNDLED, "-l", "Kernel module loaded", "-o", "json_output=true")
    (rule,) = orjson.loads(res.stdout)["rules"]
    assert rule["details"]["output_fields"] == [
        "proc.name", "proc.cmdline", "proc.pname", "user.name", "container.id"]
