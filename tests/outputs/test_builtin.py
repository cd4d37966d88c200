"""builtin_outputs: the enabled outputs built from falco.yaml, each delivering to a real peer."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

from falconet.api import OutputContext
from falconet.config import load_config
from falconet.outputs import (
    FileOutput,
    HttpOutput,
    LocalSyslogOutput,
    ProgramOutput,
    RemoteSyslogOutput,
    StdoutOutput,
    builtin_outputs,
)

from .helpers import make_alert, wait_for_lines
from .receiver import Receiver
from .rsyslog import Rsyslog


def test_defaults_are_stdout_and_local_syslog() -> None:
    outputs = builtin_outputs(load_config(None, env={}), OutputContext(json_output=False))
    assert list(outputs) == ["stdout", "syslog"]
    assert isinstance(outputs["stdout"], StdoutOutput)
    assert isinstance(outputs["syslog"], LocalSyslogOutput)


def test_nothing_enabled_gives_no_outputs() -> None:
    config = load_config(None, ["stdout_output.enabled=false", "syslog_output.enabled=false"],
                         env={})
    assert builtin_outputs(config, OutputContext(json_output=False)) == {}


def test_every_output_configured_from_falco_yaml_delivers(tmp_path: Path) -> None:
    rsyslog = Rsyslog(tmp_path / "rsyslog")
    rsyslog.start()
    server = Receiver()
    events = tmp_path / "events.txt"
    piped = tmp_path / "piped.txt"
    alert = make_alert('{"output":"from config","priority":"Error","rule":"R"}', "Error",
                       document={"hostname": "cfg-host"})

    async def scenario() -> list[str]:
        url = await server.start(path="/in")
        config = load_config(None, [
            "json_output=true", "stdout_output.enabled=false",
            "syslog_output.host=127.0.0.1", f"syslog_output.port={rsyslog.tcp_port}",
            "syslog_output.proto=tcp", "syslog_output.facility=local2",
            "file_output.enabled=true", f"file_output.filename={events}",
            "program_output.enabled=true", "program_output.keep_alive=true",
            f"program_output.program=cat >> {shlex.quote(str(piped))}",
            "http_output.enabled=true", f"http_output.url={url}",
            "http_output.user_agent=cfg-agent"], env={})
        outputs = builtin_outputs(config, OutputContext(json_output=config.json_output))
        assert [type(o) for o in outputs.values()] == [
            FileOutput, RemoteSyslogOutput, ProgramOutput, HttpOutput]
        for output in outputs.values():
            await output.send([alert])
        for output in outputs.values():
            await output.close()
        await server.stop()
        return list(outputs)

    try:
        names = asyncio.run(scenario())
        syslog_lines = wait_for_lines(rsyslog.out, 1, keep=lambda ln: " falco:" in ln)
    finally:
        rsyslog.stop()
    assert names == ["file", "syslog", "program", "http"]
    assert events.read_text() == alert.line + "\n"
    assert piped.read_text() == alert.line + "\n"
    assert syslog_lines == [f"cfg-host local2.err falco: {alert.line}"]
    [request] = server.requests
    assert request.body == alert.line.encode()
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "cfg-agent"
