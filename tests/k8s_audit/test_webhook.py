"""The k8s_audit webhook over real HTTP on 127.0.0.1 (aiohttp client, raw sockets for broken
clients): what each request is answered, which events reach the stream, that bad input is
counted (and scraped from falconet's own /metrics), that the server keeps serving, and that no
event of an accepted request is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import aiohttp
import orjson
import pytest

from falconet.api import EventBatch, SourceContext
from falconet.config import load_config
from falconet.stats import EngineStats
from falconet.webserver import start_webserver, versions_info
from falconet_k8s_audit.settings import SourceError
from falconet_k8s_audit.source import open_source
from falconet_k8s_audit.webhook import WebhookStream

from .helpers import (
    STAGE_NS,
    RecordingLog,
    audit_event,
    event_list,
    json_error,
    source_context,
)

JSON = "application/json"
DEADLINE_S = 10.0


@contextlib.asynccontextmanager
async def webhook(init_config: Mapping[str, Any] | None = None,
                  path: str = "/k8s-audit") -> AsyncIterator[tuple[WebhookStream, Any, str]]:
    """A started webhook on a free port: (stream, context, URL)."""
    ctx = source_context(f"http://127.0.0.1:0{path}", dict(init_config or {}))
    stream = cast(WebhookStream, open_source(ctx))
    await stream.start()
    try:
        yield stream, ctx, f"http://127.0.0.1:{stream.port}{path}"
    finally:
        await stream.aclose()


async def post(url: str, body: Any, *, content_type: str | None = JSON, method: str = "POST",
               headers: Mapping[str, str] | None = None) -> tuple[int, str, Mapping[str, str]]:
    """(status, body text, headers) of one request; ``body`` bytes or a document as JSON."""
    data = body if isinstance(body, bytes | bytearray) or body is None else orjson.dumps(body)
    sent = dict(headers or {})
    if content_type is not None:
        sent["Content-Type"] = content_type
    async with aiohttp.ClientSession(skip_auto_headers=("Content-Type",)) as session, \
            session.request(method, url, data=data, headers=sent) as resp:
        return resp.status, await resp.text(), resp.headers


async def next_batch(stream: AsyncIterator[EventBatch]) -> list[str]:
    """The auditIDs of the next batch of the stream."""
    batch = await asyncio.wait_for(anext(stream), DEADLINE_S)
    return [event.payload["auditID"] for event in batch]


def nothing_queued(stream: WebhookStream) -> bool:
    return stream.queue.events == 0


# --- accepted requests ------------------------------------------------------------------------

def test_an_event_is_answered_200_and_reaches_the_stream_as_upstream_emits_it() -> None:
    async def scenario() -> None:
        async with webhook() as (stream, ctx, url):
            doc = audit_event("a1")
            status, text, _ = await post(url, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            assert (status, text) == (200, "")
            (event,) = await asyncio.wait_for(anext(stream), DEADLINE_S)
            assert (event.source, event.ts, event.raw) == ("k8s_audit", STAGE_NS,
                                                           orjson.dumps(doc))
            assert event.payload == doc
            assert (ctx.counters.malformed, ctx.counters.dropped, ctx.counters.rejected) == (
                0, 0, {})

    asyncio.run(scenario())


def test_event_lists_and_arrays_become_one_batch_per_request_in_order() -> None:
    async def scenario() -> None:
        async with webhook() as (stream, _, url):
            assert (await post(url, event_list(audit_event("a1"), audit_event("a2"))))[0] == 200
            assert (await post(url, [audit_event("b1"), event_list(audit_event("b2"))]))[0] == 200
            assert (await post(url, audit_event("c1"),
                               content_type="application/json; charset=utf-8"))[0] == 200
            assert await next_batch(stream) == ["a1", "a2"]
            assert await next_batch(stream) == ["b1", "b2"]
            assert await next_batch(stream) == ["c1"]

    asyncio.run(scenario())


def test_an_empty_event_list_is_accepted_with_nothing_queued() -> None:
    async def scenario() -> None:
        async with webhook() as (stream, ctx, url):
            assert (await post(url, event_list()))[:2] == (200, "")
            assert nothing_queued(stream) and ctx.counters.rejected == {}

    asyncio.run(scenario())


def test_gzip_encoded_bodies_are_read() -> None:
    import gzip

    async def scenario() -> None:
        async with webhook() as (stream, _, url):
            body = gzip.compress(orjson.dumps(event_list(audit_event("z1"))))
            assert (await post(url, body, headers={"Content-Encoding": "gzip"}))[0] == 200
            assert await next_batch(stream) == ["z1"]

    asyncio.run(scenario())


# --- refused requests, each with its answer and its count -------------------------------------

def test_get_is_405_with_upstream_text() -> None:
    async def scenario() -> None:
        async with webhook() as (stream, ctx, url):
            assert (await post(url, None, method="GET"))[:2] == (405, "GET method not allowed\n")
            assert (await post(url, audit_event("x"), method="PUT"))[:2] == (
                405, "PUT method not allowed\n")
            assert ctx.counters.rejected == {"method_not_allowed": 2}
            assert nothing_queued(stream)

    asyncio.run(scenario())


def test_other_paths_are_404() -> None:
    async def scenario() -> None:
        async with webhook() as (stream, ctx, url):
            other = url.replace("/k8s-audit", "/k8s-audit/x")
            assert (await post(other, audit_event("x")))[:2] == (404, "404 page not found\n")
            assert ctx.counters.rejected == {"not_found": 1}
            assert nothing_queued(stream)

    asyncio.run(scenario())


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_wrong_content_type_is_400_with_upstream_text(content_type: str | None) -> None:
    async def scenario() -> None:
        async with webhook() as (stream, ctx, url):
            assert (await post(url, audit_event("x"), content_type=content_type))[:2] == (
                400, "wrong Content Type\n")
            assert ctx.counters.rejected == {"wrong_content_type": 1}
            assert nothing_queued(stream)

    asyncio.run(scenario())


def test_malformed_json_is_400_with_the_reason() -> None:
    async def scenario() -> None:
        async with webhook() as (stream, ctx, url):
            body = b'{"kind": "Event", "auditID": '
            status, text, _ = await post(url, body)
            assert (status, text) == (400, f"bad request: invalid JSON: {json_error(body)}\n")
            assert (ctx.counters.malformed, ctx.counters.rejected) == (1, {"invalid_json": 1})
            assert ctx.log.messages() == [f"invalid JSON: {json_error(body)}"]
            assert nothing_queued(stream)

    asyncio.run(scenario())


def test_a_body_that_is_not_audit_events_is_400_and_logged_with_upstream_text() -> None:
    async def scenario() -> None:
        async with webhook() as (stream, ctx, url):
            assert (await post(url, {"kind": 0}))[:2] == (
                400, "accepted 0 of 1 audit events\n"
                     "refused: data not recognized as a k8s audit event\n")
            assert (ctx.counters.malformed, ctx.counters.rejected) == (1, {"not_audit_event": 1})
            assert "data not recognized as a k8s audit event" in ctx.log.messages()
            assert nothing_queued(stream)

    asyncio.run(scenario())


def test_bad_events_of_a_list_are_refused_alone_and_listed_in_the_answer() -> None:
    async def scenario() -> None:
        async with webhook({"maxEventSize": 400}) as (stream, ctx, url):
            big = audit_event("big", requestObject={"data": "x" * 400})
            size = len(orjson.dumps(big))
            body = event_list(audit_event("a1"), big, audit_event("no-ts", stage_ts=None),
                              audit_event("a2"))
            status, text, _ = await post(url, body)
            assert (status, text) == (
                200, "accepted 2 of 4 audit events\n"
                     f"refused: event larger than maxEventSize: size={size} (auditID big)\n"
                     "refused: can't read stageTimestamp (auditID no-ts)\n")
            assert await next_batch(stream) == ["a1", "a2"]
            assert (ctx.counters.malformed, ctx.counters.dropped) == (1, 1)
            assert ctx.counters.rejected == {"event_too_large": 1, "bad_stage_timestamp": 1}
            big_log = [kw for _, msg, kw in ctx.log.records if msg.startswith("event larger")]
            assert big_log == [{"reason": "event_too_large", "client": "127.0.0.1",
                                "auditID": "big"}]

    asyncio.run(scenario())


def test_an_oversized_body_is_413_announced_or_chunked() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * 60

    async def scenario() -> None:
        async with webhook({"webhookMaxBatchSize": 100}) as (stream, ctx, url):
            body = orjson.dumps(audit_event("big", requestObject={"data": "x" * 200}))
            assert (await post(url, body))[:2] == (
                413, f"request body too large: {len(body)} bytes, webhookMaxBatchSize is 100\n")
            async with aiohttp.ClientSession() as session, \
                    session.post(url, data=chunks(), headers={"Content-Type": JSON}) as resp:
                assert (resp.status, await resp.text()) == (
                    413, "request body too large: more than 100 bytes, webhookMaxBatchSize "
                         "is 100\n")
            # still serving
            assert (await post(url, b'{"kind":"Event","stageTimestamp":"2024-01-02T03:04:05Z",'
                                    b'"auditID":"ok"}'))[0] == 200
            assert await next_batch(stream) == ["ok"]
            assert ctx.counters.rejected == {"body_too_large": 2}

    asyncio.run(scenario())


async def read_http_response(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """(status line, headers, body) of one response read off a raw connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def test_a_stalled_client_gets_408_while_others_are_served() -> None:
    async def scenario() -> None:
        async with webhook({"webhookReadTimeout": 2}) as (stream, ctx, url):
            reader, writer = await asyncio.open_connection("127.0.0.1", stream.port)
            writer.write(b"POST /k8s-audit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                         b'{"kind": "Event", ')
            await writer.drain()
            stalled = asyncio.ensure_future(read_http_response(reader))
            # served while the stalled request is still waiting for its body
            assert (await post(url, audit_event("meanwhile")))[0] == 200
            assert await next_batch(stream) == ["meanwhile"]
            assert not stalled.done()
            status, headers, body = await asyncio.wait_for(stalled, DEADLINE_S)
            assert status == "HTTP/1.1 408 Request Timeout"
            assert headers["connection"] == "close"
            assert body == b"request body not received within 2s\n"
            writer.close()
            assert ctx.counters.rejected == {"read_timeout": 1}
            assert nothing_queued(stream)

    asyncio.run(scenario())


def test_a_client_that_hangs_up_mid_body_costs_only_its_request() -> None:
    async def scenario() -> None:
        async with webhook() as (stream, ctx, url):
            _reader, writer = await asyncio.open_connection("127.0.0.1", stream.port)
            writer.write(b"POST /k8s-audit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            deadline = asyncio.get_running_loop().time() + DEADLINE_S
            while "read_error" not in ctx.counters.rejected:
                assert asyncio.get_running_loop().time() < deadline, ctx.counters.rejected
                await asyncio.sleep(0.02)
            assert (await post(url, audit_event("after")))[0] == 200
            assert await next_batch(stream) == ["after"]
            assert ctx.counters.rejected == {"read_error": 1}

    asyncio.run(scenario())


# --- back-pressure ------------------------------------------------------------------------------

def test_a_full_queue_answers_429_with_retry_after_and_the_retry_is_kept() -> None:
    async def scenario() -> None:
        async with webhook({"webhookMaxQueuedEvents": 3}) as (stream, ctx, url):
            # an empty queue takes any batch, even one larger than the bound
            assert (await post(url, [audit_event(f"big{i}") for i in range(4)]))[0] == 200
            status, text, headers = await post(url, audit_event("late"))
            assert (status, text, headers["Retry-After"]) == (
                429, "too many requests: audit events are waiting for evaluation, retry later\n",
                "1")
            assert await next_batch(stream) == ["big0", "big1", "big2", "big3"]
            assert (await post(url, [audit_event("r1"), audit_event("r2")]))[0] == 200
            # 2 queued of 3: a batch of 2 would go over the bound, a batch of 1 fits
            assert (await post(url, [audit_event("x1"), audit_event("x2")]))[0] == 429
            assert (await post(url, audit_event("late")))[0] == 200
            assert await next_batch(stream) == ["r1", "r2"]
            assert await next_batch(stream) == ["late"]
            assert ctx.counters.rejected == {"queue_full": 2}
            assert (ctx.counters.malformed, ctx.counters.dropped) == (0, 0)

    asyncio.run(scenario())


def test_refused_events_of_a_retried_request_are_counted_once() -> None:
    async def scenario() -> None:
        async with webhook({"webhookMaxQueuedEvents": 1}) as (stream, ctx, url):
            assert (await post(url, audit_event("first")))[0] == 200
            body = [audit_event("a1"), audit_event("a2"), {"kind": 0}]
            assert (await post(url, body))[0] == 429
            assert ctx.counters.malformed == 0
            assert await next_batch(stream) == ["first"]
            assert (await post(url, body))[0] == 200
            assert await next_batch(stream) == ["a1", "a2"]
            assert ctx.counters.rejected == {"queue_full": 1, "not_audit_event": 1}
            assert ctx.counters.malformed == 1

    asyncio.run(scenario())


# --- lifecycle ----------------------------------------------------------------------------------

def test_aclose_stops_listening_ends_the_stream_and_counts_unevaluated_events() -> None:
    async def scenario() -> None:
        ctx = source_context("http://127.0.0.1:0/k8s-audit")
        stream = cast(WebhookStream, open_source(ctx))
        waiting = asyncio.ensure_future(anext(stream))  # starts the server, waits for a batch
        url = f"http://127.0.0.1:{stream.port}/k8s-audit"
        assert (await post(url, audit_event("seen")))[0] == 200
        assert [e.payload["auditID"] for e in await asyncio.wait_for(waiting, DEADLINE_S)] == [
            "seen"]
        assert (await post(url, [audit_event("q1"), audit_event("q2")]))[0] == 200
        # a reader waiting for the next batch is woken by the close, not fed the queued batch
        reader_waits = asyncio.ensure_future(anext(stream))
        await stream.aclose()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader_waits, DEADLINE_S)
        assert ctx.counters.dropped == 2
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(url, audit_event("after"))
        await stream.aclose()  # idempotent

    asyncio.run(scenario())


def test_events_queued_at_shutdown_are_counted_as_dropped_and_logged() -> None:
    async def scenario() -> None:
        async with webhook() as (_stream, ctx, url):
            assert (await post(url, [audit_event("q1"), audit_event("q2")]))[0] == 200
        assert ctx.counters.dropped == 2
        assert ("warning", "audit events received but not evaluated at shutdown",
                {"events": 2}) in ctx.log.records

    asyncio.run(scenario())


def test_listening_is_announced_with_the_bound_port() -> None:
    async def scenario() -> None:
        async with webhook() as (stream, ctx, _):
            assert ctx.log.messages("info") == [
                f"k8s audit webhook listening on http://127.0.0.1:{stream.port}/k8s-audit"]

    asyncio.run(scenario())


def test_a_taken_port_fails_when_the_source_is_opened() -> None:
    async def scenario() -> None:
        async with webhook() as (stream, _, _):
            with pytest.raises(SourceError, match=rf"^cannot listen on 127\.0\.0\.1:"
                                                  rf"{stream.port}: Address already in use$"):
                open_source(source_context(f"http://127.0.0.1:{stream.port}/k8s-audit"))

    asyncio.run(scenario())


def test_open_params_errors_are_clear() -> None:
    with pytest.raises(SourceError, match=r"^open_params: bad port in http://127\.0\.0\.1:x/a"):
        open_source(SourceContext("http://127.0.0.1:x/a", {}, log=RecordingLog()))
    with pytest.raises(SourceError, match=r"^open_params is empty"):
        open_source(SourceContext("  ", {}, log=RecordingLog()))


# --- every bad input, counted in falconet's /metrics --------------------------------------------

def test_each_bad_input_is_counted_in_metrics_and_good_events_are_all_kept() -> None:
    async def scenario() -> str:
        init = {"webhookMaxBatchSize": 2000, "maxEventSize": 600, "webhookReadTimeout": 1,
                "webhookMaxQueuedEvents": 100}
        async with webhook(init) as (stream, ctx, url):
            config = load_config(None, ["webserver.listen_address=127.0.0.1",
                                        "webserver.listen_port=0", "metrics.enabled=true",
                                        "webserver.prometheus_metrics_enabled=true"], env={})
            stats = EngineStats()
            stats.source("k8s_audit").counters = ctx.counters
            server = await start_webserver(config.webserver, stats, versions_info(),
                                           lambda: True, metrics=config.metrics)
            try:
                kept = ["g0"]
                assert (await post(url, audit_event("g0")))[0] == 200
                assert (await post(url, b"{nope"))[0] == 400
                assert (await post(url, audit_event("x"), content_type="text/plain"))[0] == 400
                assert (await post(url, None, method="GET"))[0] == 405
                assert (await post(url, b"[" + b" " * 3000 + b"]"))[0] == 413
                big = audit_event("big", requestObject={"data": "x" * 700})
                assert (await post(url, [audit_event("g1"), big]))[0] == 200
                kept.append("g1")
                assert (await post(url, {"kind": 0}))[0] == 400
                assert (await post(url, audit_event("nots", stage_ts="now")))[0] == 400
                reader, writer = await asyncio.open_connection("127.0.0.1", stream.port)
                writer.write(b"POST /k8s-audit HTTP/1.1\r\nHost: h\r\nContent-Type: "
                             b"application/json\r\nContent-Length: 50\r\n\r\n[")
                await writer.drain()
                assert (await post(url, audit_event("g2")))[0] == 200
                kept.append("g2")
                assert (await asyncio.wait_for(read_http_response(reader), DEADLINE_S))[0] == (
                    "HTTP/1.1 408 Request Timeout")
                writer.close()
                got = [i for _ in range(3) for i in await next_batch(stream)]
                assert got == kept
                async with aiohttp.ClientSession() as session, \
                        session.get(f"http://127.0.0.1:{server.port}/metrics") as resp:
                    return await resp.text()
            finally:
                await server.stop()

    text = asyncio.run(scenario())
    lines = [ln for ln in text.splitlines() if ln.startswith(("falconet_source_rejected",
                                                                "falconet_events_malformed",
                                                                "falconet_events_dropped"))]
    assert lines == [
        'falconet_events_malformed_total{source="k8s_audit"} 3',
        'falconet_events_dropped_total{source="k8s_audit"} 1',
        'falconet_source_rejected_total{reason="bad_stage_timestamp",source="k8s_audit"} 1',
        'falconet_source_rejected_total{reason="body_too_large",source="k8s_audit"} 1',
        'falconet_source_rejected_total{reason="event_too_large",source="k8s_audit"} 1',
        'falconet_source_rejected_total{reason="invalid_json",source="k8s_audit"} 1',
        'falconet_source_rejected_total{reason="method_not_allowed",source="k8s_audit"} 1',
        'falconet_source_rejected_total{reason="not_audit_event",source="k8s_audit"} 1',
        'falconet_source_rejected_total{reason="read_timeout",source="k8s_audit"} 1',
        'falconet_source_rejected_total{reason="wrong_content_type",source="k8s_audit"} 1',
    ]
    assert ("# HELP falconet_source_rejected_total Requests or events a source refused, per "
            "source and reason.\n# TYPE falconet_source_rejected_total counter\n") in text
