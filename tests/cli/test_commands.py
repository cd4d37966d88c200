"""The ``falconet`` flags beyond rules: listings, plugin info, support, help, run-mode wiring."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
BUNDLED = "rules/falconet_rules.yaml"
SAMPLE = "samples/syscall.jsonl"
PLUGINS = ("-o", "plugins[]={name: k8saudit}", "-o", "plugins[]={name: json}")

needs_fields = pytest.mark.skipif(
    not (SHARED / "upstream" / "fields" / "fields.tsv").is_file(),
    reason="needs ../shared/upstream (upstream field list)",
)


def falconet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "falconet.cli", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, **(env or {})},
    )


def error_line(res: subprocess.CompletedProcess[str]) -> str:
    return res.stderr.strip().splitlines()[-1]


# --- help, version, usage errors -------------------------------------------------------------

def test_help_has_sections_in_order_with_examples() -> None:
    res = falconet("-h")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0] == "Usage: falconet [OPTIONS]"
    heads = [ln for ln in lines if ln and not ln.startswith(" ")]
    assert heads[1:] == ["Rules:", "Configuration:", "Listings:", "Running:"]
    assert "  Examples:" in lines
    assert "    falconet --list=k8s_audit -N" in lines
    assert any(ln.startswith("  Exit codes: 0 success; 1 any error") for ln in lines)
    assert falconet("--help").stdout == res.stdout


def test_version_lines() -> None:
    res = falconet("--version")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines] == [
        "falconet version", "Engine version", "Python version"]
    assert lines[1] == "Engine version:   0.62.0"


def test_version_json_lists_installed_plugins() -> None:
    res = falconet("--version", "-o", "json_output=true")
    assert res.returncode == 0, res.stderr
    doc = orjson.loads(res.stdout)
    assert doc["engine_version"] == "62"
    assert doc["engine_version_semver"] == "0.62.0"
    assert doc["plugin_versions"]["json"] == "0.7.4"
    assert "k8saudit" in doc["plugin_versions"]


def test_version_and_help_leave_the_engine_unimported() -> None:
    code = (
        "import sys\n"
        "from falconet.cli import main\n"
        "for args in (['--version'], ['-h']):\n"
        "    try:\n"
        "        main(args, prog_name='falconet')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in sys.modules if m.startswith(('falconet.ruleset', 'falconet.plugins',"
        " 'falconet.condition', 'aiohttp', 'structlog', 'lark', 'rich', 'yaml'))]\n"
        "print(sorted(heavy))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "[]"


def test_unknown_option_is_a_usage_error_with_exit_1() -> None:
    res = falconet("--bogus")
    assert res.returncode == 1
    assert res.stderr.splitlines()[:2] == [
        "Usage: falconet [OPTIONS]", "Try 'falconet --help' for help."]
    assert error_line(res) == "Error: No such option '--bogus'."


def test_negative_duration_is_a_usage_error() -> None:
    res = falconet("-M", "-1")
    assert res.returncode == 1
    assert error_line(res).startswith("Error: Invalid value for '-M': -1.0 is not in the range")


def test_bad_list_format() -> None:
    res = falconet("--list", "--format", "yaml")
    assert res.returncode == 1
    assert error_line(res) == "Error: Invalid format 'yaml'. Valid values are: text, markdown, json"


def test_markdown_and_format_together() -> None:
    res = falconet("--list", "--markdown", "--format", "json")
    assert res.returncode == 1
    assert res.stderr == "Error: Cannot specify both --markdown and --format options together\n"


def test_enable_and_disable_source_cannot_be_mixed() -> None:
    res = falconet("--enable-source", "k8s_audit", "--disable-source", "syscall")
    assert res.returncode == 1
    assert res.stderr == "Error: You can not mix --enable-source and --disable-source\n"


# --- --list ----------------------------------------------------------------------------------

@needs_fields
def test_list_unknown_source() -> None:
    res = falconet("--list=nope")
    assert res.returncode == 1
    assert res.stderr == "Error: Value for --list must be a valid source type\n"


@needs_fields
def test_list_one_source_text_blocks() -> None:
    res = falconet("--list=k8s_audit", *PLUGINS)
    assert res.returncode == 0, res.stderr
    blocks = res.stdout.split("-------------------------------\n")[1:]
    heads = [b.splitlines()[:2] for b in blocks]
    assert heads == [
        [f"{'Field Class:':<30}{name}", f"{'Event Sources:':<30}k8s_audit"]
        for name in ("evt", "json", "jevt", "ka")]
    ka = blocks[3].splitlines()
    assert ka[3] == f"{'ka.auditid':<30}(Type: CHARBUF) The unique id of the audit event"
    assert ka[4] == (f"{'ka.stage':<30}(Type: CHARBUF) Stage of the request (e.g. "
                     "RequestReceived, ResponseComplete, etc.)")


@needs_fields
def test_list_names_only() -> None:
    res = falconet("--list=k8s_audit", "-N", *PLUGINS)
    assert res.returncode == 0, res.stderr
    names = res.stdout.splitlines()
    assert names[:3] == ["evt.num", "evt.time", "evt.time.s"]
    assert len(names) == len(set(names))
    assert len([n for n in names if n.startswith("ka.")]) == 100
    assert "json.value" in names and "jevt.value" in names


@needs_fields
def test_list_json_shape() -> None:
    res = falconet("--list=k8s_audit", "--format", "json", *PLUGINS)
    assert res.returncode == 0, res.stderr
    doc = orjson.loads(res.stdout)
    assert list(doc) == ["fieldclasses"]
    assert [fc["name"] for fc in doc["fieldclasses"]] == ["evt", "json", "jevt", "ka"]
    for fc in doc["fieldclasses"]:
        assert set(fc) == {"name", "event_sources", "fields"}
        assert fc["event_sources"] == ["k8s_audit"]
        for fld in fc["fields"]:
            assert set(fld) == {"name", "type", "desc", "is_list", "argument"}
    value = doc["fieldclasses"][1]["fields"][0]
    assert value["name"] == "json.value"
    assert value["argument"] == {"required": True, "type": ["KEY"]}
    names = orjson.loads(falconet("--list=k8s_audit", "-N", "--format", "json").stdout)
    assert list(names) == ["fieldnames"]


@needs_fields
def test_list_all_sources_shares_plugin_classes() -> None:
    res = falconet("--list", "--format", "markdown")
    assert res.returncode == 0, res.stderr
    heads = [ln for ln in res.stdout.splitlines() if ln.startswith(("## ", "Event Sources:"))]
    assert heads[:2] == ["## Field Class: evt", "Event Sources: syscall"]
    evt = heads.index("## Field Class: evt", 1)
    assert heads[evt + 1] == "Event Sources: aws_cloudtrail k8s_audit"


@needs_fields
def test_deprecated_markdown_flag_warns() -> None:
    res = falconet("--list=k8s_audit", "--markdown")
    assert res.returncode == 0
    assert res.stderr == "WARNING: --markdown is deprecated, use --format markdown instead.\n"
    assert res.stdout.startswith("## Field Class: evt\n")


# --- plugins ---------------------------------------------------------------------------------

JSON_PLUGIN_BLOCK = (
    "Name: json\n"
    "Description: Extract values from any JSON payload\n"
    "Contact: github.com/falcosecurity/plugins\n"
    "Version: 0.7.4\n"
    "Capabilities:\n"
    "  - Field Extraction\n"
)


def test_list_plugins_none_configured() -> None:
    res = falconet("--list-plugins")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "0 Plugins Loaded:\n\n"


def test_list_plugins_configured() -> None:
    res = falconet("--list-plugins", *PLUGINS)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("2 Plugins Loaded:\n\nName: k8saudit\n")
    assert res.stdout.endswith("\n\n" + JSON_PLUGIN_BLOCK + "\n")
    k8s = res.stdout.split("\n\n")[1].splitlines()
    assert "  - Field Extraction" in k8s


def test_list_plugins_follows_load_plugins() -> None:
    res = falconet("--list-plugins", *PLUGINS, "-o", "load_plugins[]=json")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "1 Plugins Loaded:\n\n" + JSON_PLUGIN_BLOCK + "\n"


def test_list_plugins_unknown_plugin_fails() -> None:
    res = falconet("--list-plugins", "-o", "plugins[]={name: nosuch}")
    assert res.returncode == 1
    assert error_line(res).startswith(
        "Error: Cannot load plugin 'nosuch': no installed falconet plugin has this name")


def test_plugin_info_json() -> None:
    res = falconet("--plugin-info", "json")
    assert res.returncode == 0, res.stderr
    head, schema = res.stdout.split("\nInit config schema type: JSON\n")
    assert head == JSON_PLUGIN_BLOCK
    assert orjson.loads(schema)["properties"]["useAsync"]["type"] == "boolean"
    assert schema.endswith("}\n\n")


def test_plugin_info_by_library_path(tmp_path: Path) -> None:
    config = tmp_path / "falco.yaml"
    config.write_text("plugins:\n  - name: k8saudit\n    library_path: libk8saudit.so\n"
                      "    open_params: http://:9765/k8s-audit\n")
    res = falconet("-c", str(config), "--plugin-info", "libk8saudit.so")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Name: k8saudit\n")
    assert "\nInit config schema type: JSON\n" in res.stdout


def test_plugin_info_unknown() -> None:
    res = falconet("--plugin-info", "nope")
    assert res.returncode == 1
    assert res.stderr == "Error: can't find plugin and print its info: nope\n"


# --- --support -------------------------------------------------------------------------------

def test_support_document(tmp_path: Path) -> None:
    config = tmp_path / "falco.yaml"
    config.write_text(
        f"rules_files: [{ROOT / BUNDLED}]\n"
        "http_output:\n  enabled: false\n  url: https://hooks.example/${FALCONET_TEST_TOKEN}\n")
    res = falconet("-c", str(config), "--support", "-o", "json_output=true",
                   env={"FALCONET_TEST_TOKEN": "s3cr3t-t0ken"})
    assert res.returncode == 0, res.stderr
    assert "s3cr3t-t0ken" not in res.stdout
    doc = orjson.loads(res.stdout)
    assert list(doc) == ["version", "engine_info", "system_info", "cmdline", "config",
                         "config_files", "rules_files"]
    assert set(doc["system_info"]) == {"sysname", "nodename", "release", "version", "machine"}
    assert doc["system_info"]["sysname"] == os.uname().sysname
    assert doc["engine_info"]["engine_version_semver"] == "0.62.0"
    assert doc["cmdline"] == f"falconet -c {config} --support -o json_output=true"
    assert doc["config"]["http_output"]["url"] == "https://hooks.example/${FALCONET_TEST_TOKEN}"
    assert doc["config"]["json_output"] == "true"  # as -o wrote it (upstream dumps the YAML)
    assert doc["config_files"] == [str(config)]
    (rules,) = doc["rules_files"]
    assert rules["name"] == str(ROOT / BUNDLED)
    assert rules["variants"] == [{"content": (ROOT / BUNDLED).read_text()}]


def test_support_rules_from_r_flag() -> None:
    res = falconet("--support", "-r", "rules")
    assert res.returncode == 0, res.stderr
    names = [r["name"] for r in orjson.loads(res.stdout)["rules_files"]]
    assert names == sorted(f"rules/{p.name}" for p in (ROOT / "rules").glob("*.y*ml"))


# --- running ---------------------------------------------------------------------------------

@needs_fields
def test_replay_defaults_to_the_syscall_source() -> None:
    res = falconet("-r", BUNDLED, "-e", SAMPLE, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "Opening 'syscall' source with a replay of samples/syscall.jsonl" in res.stderr
    assert "Events detected: 8" in res.stdout.splitlines()


@needs_fields
def test_replay_dry_run_starts_nothing() -> None:
    res = falconet("-r", BUNDLED, "--source", "syscall", "-e", SAMPLE, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "Opening 'syscall' source" not in res.stderr
    assert "Events detected" not in res.stdout


@needs_fields
def test_replay_of_an_unknown_source_fails() -> None:
    res = falconet("-r", BUNDLED, "--source", "nope", "-e", SAMPLE)
    assert res.returncode == 1
    assert error_line(res).startswith("Error: Unknown event source 'nope'")


def test_running_without_sources_fails_like_falco() -> None:
    res = falconet("-r", BUNDLED, "--dry-run", "-o", "engine.kind=nodriver")
    assert res.returncode == 1
    assert error_line(res) == (
        "Error: Must enable at least one event source (no loaded plugin provides a live source: "
        "list one under 'plugins:' and 'load_plugins:' in falco.yaml, or replay a file with "
        "--source NAME -e PATH)")
