"""http output against a real aiohttp server: headers, bodies, keep_alive, errors, timeouts."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from falconet.api import OutputError
from falconet.outputs import HttpOutput

from .helpers import RecordingLog, make_alert
from .receiver import Receiver

A1, A2, A3 = (make_alert(t) for t in ("12:00:00.000000001: Critical first (x=1)",
                                      "12:00:00.000000002: Warning second caf\u00e9",
                                      "third"))
J1 = make_alert('{"hostname":"h","output":"json alert","priority":"Critical","rule":"R"}')


def test_one_post_per_alert_with_falcos_headers() -> None:
    server = Receiver()

    async def scenario() -> None:
        url = await server.start(path="/hook?token=abc")
        out = HttpOutput(url)
        await out.send([A1, A2])
        await out.send([A3])
        await out.close()
        await server.stop()

    asyncio.run(scenario())
    assert [r.body for r in server.requests] == [a.line.encode() for a in (A1, A2, A3)]
    for r in server.requests:
        assert (r.method, r.path_qs) == ("POST", "/hook?token=abc")
        assert r.headers["User-Agent"] == "falcosecurity/falco"
        assert r.headers["Content-Type"] == "text/plain"
        assert "Content-Encoding" not in r.headers


def test_json_output_content_type_user_agent_and_quoted_url() -> None:
    server = Receiver()

    async def scenario() -> None:
        url = await server.start(path="/falco")
        out = HttpOutput(f'"{url}"', json_output=True, user_agent="falconet-test/1")
        await out.send([J1])
        await out.close()
        await server.stop()

    asyncio.run(scenario())
    [r] = server.requests
    assert (r.path_qs, r.body) == ("/falco", J1.line.encode())
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["User-Agent"] == "falconet-test/1"


def test_compress_uploads_gzips_each_body() -> None:
    server = Receiver()

    async def scenario() -> None:
        out = HttpOutput(await server.start(), json_output=True, compress_uploads=True)
        await out.send([J1, A2])
        await out.close()
        await server.stop()

    asyncio.run(scenario())
    assert [r.headers["Content-Encoding"] for r in server.requests] == ["gzip", "gzip"]
    assert [gzip.decompress(r.body) for r in server.requests] == [J1.line.encode(),
                                                                  A2.line.encode()]


@pytest.mark.parametrize("keep_alive", [True, False])
def test_keep_alive_reuses_one_connection_else_one_per_request(keep_alive: bool) -> None:
    server = Receiver()

    async def scenario() -> None:
        out = HttpOutput(await server.start(), keep_alive=keep_alive)
        await out.send([A1, A2])
        await out.send([A3])
        await out.close()
        await server.stop()

    asyncio.run(scenario())
    ports = {r.peer_port for r in server.requests}
    assert len(server.requests) == 3
    assert len(ports) == (1 if keep_alive else 3)


def test_non_2xx_is_a_failed_delivery_and_the_retry_skips_what_arrived() -> None:
    server = Receiver(answers=[(200, "ok"), (503, "  busy:\n try later  ")])

    async def scenario() -> None:
        url = await server.start()
        out = HttpOutput(url)
        batch = [A1, A2, A3]
        with pytest.raises(OutputError) as info:
            await out.send(batch)
        assert str(info.value) == (f"http output: POST {url} answered 503 Service "
                                   "Unavailable: busy: try later")
        await out.send(batch)  # the engine's retry of the same alerts
        await out.close()
        await server.stop()

    asyncio.run(scenario())
    assert [r.body for r in server.requests] == [a.line.encode() for a in (A1, A2, A2, A3)]


def test_error_body_is_cut_to_an_excerpt() -> None:
    server = Receiver(answers=[(400, "x" * 5000)])

    async def scenario() -> None:
        url = await server.start()
        out = HttpOutput(url)
        with pytest.raises(OutputError) as info:
            await out.send([A1])
        assert str(info.value) == f"http output: POST {url} answered 400 Bad Request: {'x' * 200}"
        await out.close()
        await server.stop()

    asyncio.run(scenario())


def test_redirects_are_not_followed() -> None:
    server = Receiver(answers=[(302, "")])

    async def scenario() -> None:
        url = await server.start()
        out = HttpOutput(url)
        with pytest.raises(OutputError, match=r"answered 302 Found$"):
            await out.send([A1])
        await out.close()
        await server.stop()

    asyncio.run(scenario())
    assert len(server.requests) == 1


@pytest.mark.parametrize("echo", [True, False])
def test_echo_logs_the_response_body(echo: bool) -> None:
    server = Receiver(answers=[(202, "queued as 17")])
    log = RecordingLog()

    async def scenario() -> str:
        url = await server.start()
        out = HttpOutput(url, echo=echo, log=log)
        await out.send([A1])
        await out.close()
        await server.stop()
        return url

    url = asyncio.run(scenario())
    assert log.records == ([("info", "http output: response",
                             {"url": url, "status": 202, "body": "queued as 17"})]
                           if echo else [])


@pytest.mark.parametrize(("max_timeouts", "delivered"), [(2, True), (1, False)])
def test_timeouts_are_retried_max_consecutive_timeouts_times(max_timeouts: int,
                                                             delivered: bool) -> None:
    server = Receiver(slow=2, slow_s=30.0)

    async def scenario() -> None:
        url = await server.start()
        out = HttpOutput(url, max_consecutive_timeouts=max_timeouts, timeout_s=0.3)
        if delivered:
            await out.send([A1])
        else:
            with pytest.raises(OutputError) as info:
                await out.send([A1])
            assert str(info.value) == f"http output: POST {url} timed out 2 times in a row"
        await out.close()
        await server.stop()

    asyncio.run(scenario())
    assert len(server.requests) == (3 if delivered else 2)


def test_connection_refused_is_a_failed_delivery() -> None:
    server = Receiver()

    async def scenario() -> None:
        url = await server.start()
        await server.stop()  # nothing listens on that port any more
        out = HttpOutput(url)
        with pytest.raises(OutputError,
                           match=rf"^http output: POST {url} failed: Cannot connect to host"):
            await out.send([A1])
        await out.close()

    asyncio.run(scenario())
