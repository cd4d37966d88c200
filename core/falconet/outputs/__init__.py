"""Falco's own outputs: stdout, file, program, syslog and http, each a ``falconet.api.Output``.

They only deliver: queueing, retries with backoff and the counters are the engine's. Each
``send`` raises ``OutputError`` (or ``OSError``) when its alerts did not arrive.
"""

from __future__ import annotations

from typing import Any

from falconet.api import Output, OutputContext
from falconet.config import Config
from falconet.outputs._common import output_log
from falconet.outputs.file import FileOutput
from falconet.outputs.http import HttpOutput, TlsSettings
from falconet.outputs.program import ProgramOutput
from falconet.outputs.stdout import StdoutOutput
from falconet.outputs.syslog import LocalSyslogOutput, RemoteSyslogOutput

__all__ = [
    "FileOutput",
    "HttpOutput",
    "LocalSyslogOutput",
    "ProgramOutput",
    "RemoteSyslogOutput",
    "StdoutOutput",
    "TlsSettings",
    "builtin_outputs",
]


def builtin_outputs(config: Config, ctx: OutputContext) -> dict[str, Output]:
    """The enabled built-in outputs by Falco's names, in Falco's order (file, stdout, syslog,
    program, http)."""
    buffered = config.buffered_outputs
    timeout_ms: Any = config.typed.get("output_timeout", 2000)
    timeout_s = timeout_ms / 1000 if timeout_ms else None
    outputs: dict[str, Output] = {}
    f = config.file_output
    if f.enabled:
        outputs["file"] = FileOutput(f.filename, keep_alive=f.keep_alive, buffered=buffered)
    if config.stdout_output:
        outputs["stdout"] = StdoutOutput(buffered=buffered)
    if config.syslog.enabled:
        s = config.syslog
        outputs["syslog"] = (
            RemoteSyslogOutput(s.host, s.port, proto=s.proto, facility=s.facility,
                               timeout_s=timeout_s)
            if s.host else LocalSyslogOutput(facility=s.facility))
    p = config.program_output
    if p.enabled:
        outputs["program"] = ProgramOutput(p.program, keep_alive=p.keep_alive,
                                           log=output_log(ctx, "program"))
    h = config.http_output
    if h.enabled:
        tls = TlsSettings(insecure=h.insecure, ca_cert=h.ca_cert, ca_bundle=h.ca_bundle,
                          ca_path=h.ca_path, mtls=h.mtls, client_cert=h.client_cert,
                          client_key=h.client_key)
        outputs["http"] = HttpOutput(
            h.url, json_output=ctx.json_output, user_agent=h.user_agent, tls=tls, echo=h.echo,
            compress_uploads=h.compress_uploads, keep_alive=h.keep_alive,
            max_consecutive_timeouts=h.max_consecutive_timeouts, timeout_s=timeout_s,
            log=output_log(ctx, "http"))
    return outputs
