"""``catalyst-sim bench projector``: the read side's throughput and latency on a real nats-server.

Measured in one run, on one machine, so the ratio means something:

* **raw**: nats-py alone — ``events`` messages of the same size published (async, acked) to a stream
  and consumed by a durable pull consumer (fetch + ack); events/s from the first publish to the
  last ack.
* **pipeline**: the same number of GitOps envelopes published to an Environment's stream, folded by
  the projector into KV and delivered by the Catalyst API's SSE stream to a client; events/s from
  the first publish until the client has seen the card of every App's last event (a client that
  falls more than the SSE buffer behind resumes with Last-Event-ID, as a browser would).
* **latency**: events published one at a time (each waits for its ack, then a short pause), each
  timed from publish to the SSE client receiving the card it produced: p50 / p99.

Targets (issue 4) are reported, never asserted: pipeline / raw ≥ 0.5.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType
from starlette.applications import Starlette

from catalyst_sim import __version__
from catalyst_sim.backends.embedded.nats import EmbeddedNats
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.api.state import ReadSide, routes_for
from catalyst_sim.control.events.publisher import MSG_ID_HEADER, canonical_json, stream_name
from catalyst_sim.control.events.wiring import EventSpine
from catalyst_sim.control.gitops.events import EventEmitter
from catalyst_sim.harness.sse import SseClient
from catalyst_sim.model.naming import flux_subject, parse_environment_name
from catalyst_sim.serving import ServerThread

ORG = "bench"
ENV = "bench-dev"
TARGET_RATIO = 0.5


class _Timeline:
    """Publish times by event id, and when the SSE client first saw each id's card."""

    def __init__(self) -> None:
        self.published: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.expect: set[str] = set()


class _TimedSse(SseClient):
    def __init__(self, timeline: _Timeline, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeline = timeline

    def _dispatch(self, fields: dict[str, str], raw: str) -> None:
        now = time.perf_counter()
        if fields.get("event") == "Application":
            # The record's lastEvent.id names the event it folded: cheaper than parsing all of it here.
            start = raw.find('"lastEvent":{"id":"')
            if start >= 0:
                start += len('"lastEvent":{"id":"')
                event_id = raw[start:raw.index('"', start)]
                timeline = self.timeline
                with timeline.lock:
                    timeline.seen.setdefault(event_id, now)
                    if timeline.expect and timeline.expect <= timeline.seen.keys():
                        timeline.done.set()
            return
        super()._dispatch(fields, raw)


def _envelopes(count: int, apps: int, prefix: str) -> list[tuple[str, str, bytes]]:
    """(subject, id, body) of ``count`` realistic Flux envelopes over ``apps`` Applications."""
    out: list[dict[str, Any]] = []
    emitter = EventEmitter(out.append, VirtualClock(), vcluster=ORG, organization=ORG, environment=ENV)
    for i in range(count):
        app = f"app-{i % apps:03d}"
        ready = "True" if i % 2 else "Unknown"
        emitter.kustomization(app, "reconciled" if i % 2 else "progressing", revision=f"develop@sha1:{i:040x}",
                              ready=ready, reason="ReconciliationSucceeded" if i % 2 else "Progressing",
                              message=f"event {i}")
    result = []
    for event in out:
        event["id"] = f"{prefix}.{event['id']}"
        result.append((flux_subject(ENV, event["subject"]), event["id"], canonical_json(event)))
    return result


async def _raw(url_opts: dict[str, Any], bodies: list[bytes]) -> dict[str, Any]:
    nc = await nats.connect(**url_opts)
    try:
        js = nc.jetstream(timeout=10)
        with contextlib.suppress(Exception):
            await js.delete_stream("RAW")
        await js.add_stream(name="RAW", subjects=["raw.>"], storage=StorageType.FILE)
        await js.add_consumer("RAW", ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.EXPLICIT))
        sub = await js.pull_subscribe_bind(durable="raw", stream="RAW")
        began = time.perf_counter()
        for i, body in enumerate(bodies):
            await js.publish_async(f"raw.x.{i % 50}", body, headers={MSG_ID_HEADER: f"raw-{i}"})
        await js.publish_async_completed()
        published = time.perf_counter()
        got = 0
        while got < len(bodies):
            for msg in await sub.fetch(500, timeout=5):
                await msg.ack()
                got += 1
        ended = time.perf_counter()
        await js.delete_stream("RAW")
        return {"events": len(bodies), "publish_s": round(published - began, 4), "total_s": round(ended - began, 4),
                "publish_per_s": round(len(bodies) / (published - began)),
                "consume_per_s": round(len(bodies) / (ended - published)),
                "events_per_s": round(len(bodies) / (ended - began))}
    finally:
        await nc.close()


async def _publish(spine: EventSpine, envelopes: list[tuple[str, str, bytes]], timeline: _Timeline,
                   pause: float | None = None) -> None:
    """Publish every envelope to the Environment's stream: all at once without waiting for each ack
    (``pause`` None, the throughput burst), or one acked publish at a time ``pause`` seconds apart."""
    projector = spine.projector(ENV)
    assert projector is not None
    js = projector.js
    stream = stream_name(ENV)
    for subject, event_id, body in envelopes:
        timeline.published[event_id] = time.perf_counter()
        headers = {MSG_ID_HEADER: event_id}
        if pause is None:
            await js.publish_async(subject, body, stream=stream, headers=headers)
        else:
            await js.publish(subject, body, stream=stream, headers=headers)
            await asyncio.sleep(pause)
    if pause is None:
        await js.publish_async_completed()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_projector_bench(*, events: int = 5000, apps: int = 20, latency_events: int = 300,
                        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    say = progress or (lambda _: None)
    with tempfile.TemporaryDirectory(prefix="catalyst-bench-projector-") as scratch:
        server = EmbeddedNats(Path(scratch), [ORG])
        began = time.perf_counter()
        server.start()
        nats_ready = time.perf_counter() - began
        spine = EventSpine(server, VirtualClock())
        side = ReadSide(spine=spine, organization_of=lambda env: parse_environment_name(env).organization,
                        applications=lambda org: [f"app-{i:03d}" for i in range(apps)])

        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            await spine.start()
            try:
                yield
            finally:
                await spine.stop()

        api = ServerThread(Starlette(routes=routes_for(side), lifespan=lifespan), "bench-projector").start()
        try:
            say(f"nats-server {server.version} ready in {nats_ready * 1000:.0f} ms")
            burst = _envelopes(events, apps, "burst")
            raw = api.run_coroutine(_raw(server.connect_options(ORG), [b for _, _, b in burst]), timeout=600)
            say(f"raw nats-py: {raw['events_per_s']} events/s (publish {raw['publish_per_s']}/s, "
                f"consume {raw['consume_per_s']}/s)")

            spine.environment_created(ENV)
            deadline = time.monotonic() + 30
            while not spine.settled():
                if time.monotonic() > deadline:
                    raise TimeoutError("the projector did not start")
                time.sleep(0.01)
            timeline = _Timeline()
            with _TimedSse(timeline, api.url, f"/api/v1/environments/{ENV}/events", name="bench-sse") as sse:
                while not sse.synced():
                    time.sleep(0.01)
                # The last event of every App: a client that fell behind resumes with Last-Event-ID and
                # gets the latest record per key, so intermediate events may be folded away for it.
                last_per_app: dict[str, str] = {}
                for subject, event_id, _body in burst:
                    last_per_app[subject] = event_id
                timeline.expect = set(last_per_app.values())
                api.run_coroutine(_publish(spine, burst, timeline), timeout=600)
                if not timeline.done.wait(600):
                    raise TimeoutError(f"SSE saw {len(timeline.seen)} of {events} events")
                first = min(timeline.published.values())
                last_seen = max(timeline.seen[i] for i in timeline.expect)
                pipeline_s = last_seen - first
                pipeline = {"events": events, "applications": apps, "total_s": round(pipeline_s, 4),
                            "events_per_s": round(events / pipeline_s), "sse_reconnects": sse.connects - 1,
                            "sse_events_seen": len(timeline.seen),
                            "kv_writes": spine.projector(ENV).stats["kv_writes"] if spine.projector(ENV) else None}
                say(f"publish → KV → SSE: {pipeline['events_per_s']} events/s")

                paced = _envelopes(latency_events, apps, "paced")
                timeline.done.clear()
                timeline.expect = {i for _, i, _ in paced}
                api.run_coroutine(_publish(spine, paced, timeline, pause=0.005), timeout=600)
                if not timeline.done.wait(120):
                    raise TimeoutError("SSE missed paced events")
                latencies = [(timeline.seen[i] - timeline.published[i]) * 1000 for i in timeline.expect]
            latency = {"events": latency_events, "p50_ms": round(_percentile(latencies, 0.5), 2),
                       "p99_ms": round(_percentile(latencies, 0.99), 2), "max_ms": round(max(latencies), 2),
                       "mean_ms": round(statistics.fmean(latencies), 2)}
            say(f"publish → SSE latency p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms")
        finally:
            api.stop()
            server.stop()
    ratio = pipeline["events_per_s"] / raw["events_per_s"]
    return {
        "benchmark": "projector",
        "version": __version__,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
        "nats_server": server.version,
        "parameters": {"events": events, "applications": apps, "latency_events": latency_events},
        "results": {"raw_nats_py": raw, "pipeline_publish_kv_sse": pipeline, "latency_publish_to_sse": latency},
        "ratios": {"pipeline_vs_raw_events_per_s": round(ratio, 3)},
        "targets": {"pipeline_vs_raw_events_per_s": TARGET_RATIO},
        "met": {"pipeline_vs_raw_events_per_s": ratio >= TARGET_RATIO},
    }
