"""Contract tests: publisher → real JetStream → projector → KV (issue 4 items 2-3).

Everything runs against the real nats-server of the embedded backend, with the GitOps engine's own
event emitter producing the Flux envelopes (R-FLUX-04). What is pinned down: cards follow R-CARD-02 /
D-09 through an install; JetStream de-duplicates by event id; the fold is idempotent under
redelivery; rebuild from the stream is byte-identical (R-PROJ-06); a projector crash or a NATS
restart mid-stream loses nothing; bad input is parked; Organizations are isolated (R-NAME-16).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.errors import BucketNotFoundError, NotFoundError

from catalyst_sim.backends.embedded.nats import EmbeddedNats
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.events import EventPublisher, PublishError, stream_name
from catalyst_sim.control.gitops.events import EventEmitter
from catalyst_sim.control.projector import KVChange, Projector, durable_name
from catalyst_sim.model.naming import flux_subject, k8s_subject, kv_bucket

from .conftest import ENV, OTHER_ORG, connect, deployment, revision

Flux = tuple[EventEmitter, list[dict[str, Any]]]


async def publish_all(publisher: EventPublisher, events: list[dict[str, Any]]) -> None:
    for event in events:
        await publisher.publish_flux(event)
    events.clear()


def install(emitter: EventEmitter, app: str, sha: str) -> None:
    """What the engine emits for one App's first install: progressing, then reconciled."""
    emitter.kustomization(app, "progressing", revision=revision(sha), ready="Unknown", reason="Progressing",
                          message="Reconciliation in progress")
    emitter.kustomization(app, "reconciled", revision=revision(sha), ready="True", reason="ReconciliationSucceeded",
                          message=f"Applied revision: {revision(sha)}")


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.001)

    await asyncio.wait_for(poll(), timeout)


async def card(projector: Projector, app: str) -> dict[str, Any]:
    await projector.wait_caught_up()
    return (await projector.snapshot())[f"Application/{app}"]["card"]


async def test_install_goes_installing_then_running_with_pods_and_updates(
    nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock
) -> None:
    emitter, events = flux
    async with Projector(nc, ENV, clock) as projector:
        emitter.kustomization("wordpress", "progressing", revision=revision("a1b2c3d"), ready="Unknown",
                              reason="Progressing", message="Reconciliation in progress")
        await publish_all(publisher, events)
        assert (await card(projector, "wordpress"))["state"] == "Installing"

        await publisher.publish_k8s(ENV, "Deployment", "wordpress", "wordpress", deployment("wordpress", 1, 3),
                                    "ADDED")
        clock.advance(30)
        emitter.kustomization("wordpress", "reconciled", revision=revision("a1b2c3d"), ready="True",
                              reason="ReconciliationSucceeded", message="Applied revision")
        await publish_all(publisher, events)
        got = await card(projector, "wordpress")
        assert (got["state"], got["text"], got["glyph"]) == ("Degraded", "1/3 pods, 2 unhealthy", "◒")

        await publisher.publish_k8s(ENV, "Deployment", "wordpress", "wordpress",
                                    deployment("wordpress", 3, 3, rv=2), "MODIFIED")
        got = await card(projector, "wordpress")
        assert (got["state"], got["text"], got["label"]) == ("Running", f"3/3 pods at {revision('a1b2c3d')}",
                                                             "● Running")

        # A push to the Environment's branch moves the head: Ready at an older revision is "Updating".
        await publisher.publish_git(ENV, "e4f5a6b7", {"repository": {"name": "wordpress"},
                                                      "ref": "refs/heads/develop", "after": "e4f5a6b7"})
        assert (await card(projector, "wordpress"))["state"] == "Updating"
        # A push to another Environment's branch changes nothing here.
        await publisher.publish_git(ENV, "0badc0de", {"repository": {"name": "wordpress"},
                                                      "ref": "refs/heads/main", "after": "0badc0de"})
        assert (await card(projector, "wordpress"))["state"] == "Updating"
        emitter.kustomization("wordpress", "reconciled", revision=revision("e4f5a6b7"), ready="True",
                              reason="ReconciliationSucceeded", message="Applied revision")
        await publish_all(publisher, events)
        assert (await card(projector, "wordpress"))["state"] == "Running"

        snap = await projector.snapshot()
        app = snap["Application/wordpress"]
        assert app["ever_ready"] is True and app["pods"] == {"ready": 3, "desired": 3}
        assert app["revision"] == revision("e4f5a6b7") and app["head"] == "e4f5a6b7"
        assert app["lastEvent"]["time"] == "2026-11-24T09:00:30Z"  # event time, never the wall clock
        states = [e["state"] for e in snap["ApplicationHistory/wordpress"]["entries"]]
        assert states == ["Installing", "Degraded", "Running", "Updating", "Running"]
        summary = snap[f"Environment/{ENV}"]
        assert summary["applications"] == {"wordpress": "Running"}
        assert summary["counts"]["Running"] == 1 and summary["parked"] == 0
        assert snap["Repository/wordpress"]["head"] == "e4f5a6b7"


async def test_failed_install_shows_the_reason_and_deleted_app_leaves_the_summary(
    nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock
) -> None:
    emitter, events = flux
    async with Projector(nc, ENV, clock) as projector:
        install(emitter, "postgres", "1111111")
        emitter.kustomization("redis", "progressing", revision=revision("2222222"), ready="Unknown",
                              reason="Progressing", message="")
        emitter.kustomization("redis", "failed", revision=revision("2222222"), ready="False",
                              reason="HealthCheckFailed", message="timeout waiting for: [Deployment/redis/redis]")
        await publish_all(publisher, events)
        got = await card(projector, "redis")
        assert (got["state"], got["text"]) == ("Failed", "timeout waiting for: [Deployment/redis/redis]")
        snap = await projector.snapshot()
        assert snap["Application/redis"]["reason"] == "HealthCheckFailed"
        assert snap[f"Environment/{ENV}"]["applications"] == {"postgres": "Running", "redis": "Failed"}

        emitter.kustomization("redis", "deleted", revision=revision("2222222"), ready="False", reason="Deleted",
                              message="pruned")
        await publish_all(publisher, events)
        await projector.wait_caught_up()
        snap = await projector.snapshot()
        assert snap["Application/redis"]["deleted"] is True and snap["Application/redis"]["card"] is None
        assert snap[f"Environment/{ENV}"]["applications"] == {"postgres": "Running"}
        assert snap["ApplicationHistory/redis"]["entries"][-1]["state"] == "Deleted"


async def test_jetstream_deduplicates_a_republished_event_id(
    nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock
) -> None:
    emitter, events = flux
    install(emitter, "wordpress", "a1b2c3d")
    first = await publisher.publish_flux(events[0])
    again = await publisher.publish_flux(events[0])
    assert not first.duplicate and again.duplicate and again.seq == first.seq
    obj = deployment("wordpress", 1, 1)
    k1 = await publisher.publish_k8s(ENV, "Deployment", "wordpress", "wordpress", obj, "ADDED")
    k2 = await publisher.publish_k8s(ENV, "Deployment", "wordpress", "wordpress", obj, "ADDED")  # relist
    assert k2.duplicate and k2.seq == k1.seq
    info = await nc.jetstream().stream_info(stream_name(ENV))
    assert info.state.messages == 2
    async with Projector(nc, ENV, clock) as projector:
        await projector.wait_caught_up()
        assert projector.stats["applied"] == 2


async def test_redelivery_changes_nothing(nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock) -> None:
    emitter, events = flux
    for i, app in enumerate(("a-app", "b-app", "c-app")):
        install(emitter, app, f"{i}abcdef")
    await publish_all(publisher, events)
    await publisher.publish_k8s(ENV, "Deployment", "a-app", "a-app", deployment("a-app", 1, 2), "ADDED")
    await publisher.publish(flux_subject(ENV, "b-app"), {"specversion": "1.0", "id": "junk-1", "type": "nope"})
    async with Projector(nc, ENV, clock) as projector:
        await projector.wait_caught_up()
    before = await Projector(nc, ENV, clock).snapshot_bytes()
    js = nc.jetstream()
    kv_last = (await js.stream_info(f"KV_{kv_bucket(ENV)}")).state.last_seq

    # Every message delivered again (ack floor back to 0), as after a lost ack or a crash.
    await js.reset_consumer(stream_name(ENV), durable_name(ENV), seq=1)
    again = Projector(nc, ENV, clock)
    async with again:
        await again.wait_caught_up()
    assert again.stats["applied"] == 8 and again.stats["kv_writes"] == 0
    assert await again.snapshot_bytes() == before
    assert (await js.stream_info(f"KV_{kv_bucket(ENV)}")).state.last_seq == kv_last  # not one KV write


async def test_rebuild_from_the_stream_is_byte_identical(
    nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock
) -> None:
    emitter, events = flux
    for i in range(5):
        install(emitter, f"app-{i}", f"{i}0000000")
        clock.advance(60)
    emitter.kustomization("app-2", "failed", revision=revision("20000000"), ready="False",
                          reason="UpgradeFailed", message="upgrade failed")
    emitter.source("app-3", "artifact", revision=revision("30000000"), ready="True", reason="Succeeded",
                   message="stored artifact")
    await publish_all(publisher, events)
    await publisher.publish_k8s(ENV, "StatefulSet", "app-1", "db.primary", deployment("app-1", 2, 3), "ADDED")
    await nc.jetstream().publish(flux_subject(ENV, "app-4"), b"\xff not json", headers={"Nats-Msg-Id": "bad"})
    async with Projector(nc, ENV, clock) as projector:
        await projector.wait_caught_up()
        before = await projector.snapshot_bytes()
        assert {k.split("/")[0] for k in before} == {
            "Application", "ApplicationHistory", "Environment", "GitRepository", "Parked"}
        for body in before.values():
            assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                                      ensure_ascii=False).encode()
        seq = await projector.rebuild()
        assert seq == 14
        assert await projector.snapshot_bytes() == before


async def test_projector_killed_mid_stream_resumes_to_what_a_rebuild_gives(
    nats_server: EmbeddedNats, nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock
) -> None:
    emitter, events = flux
    apps = [f"svc-{i}" for i in range(8)]
    for round_ in range(40):
        for j, app in enumerate(apps):
            ready = "True" if (round_ + j) % 3 else "Unknown"
            emitter.kustomization(app, "reconciled" if ready == "True" else "progressing",
                                  revision=revision(f"{round_:04x}{j:04x}"), ready=ready, reason="Progressing",
                                  message=f"round {round_}")
        clock.advance(10)
    await publish_all(publisher, events)  # 320 events
    kills = 0
    for target in (40, 120, 230):
        conn = await connect(nats_server)
        projector = await Projector(conn, ENV, clock, batch=16).start()
        await until(lambda p=projector, t=target: p.applied_seq >= t)
        await projector.kill()  # mid-message: possibly between the App record and its history/summary
        await conn.close()
        kills += 1
    conn = await connect(nats_server)
    try:
        async with Projector(conn, ENV, clock) as projector:
            assert await projector.wait_caught_up() == 320
            resumed = await projector.snapshot_bytes()
            await projector.rebuild()
            assert await projector.snapshot_bytes() == resumed
    finally:
        await conn.close()
    assert kills == 3


async def test_nats_restart_mid_stream_loses_nothing(
    nats_server: EmbeddedNats, nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock
) -> None:
    emitter, events = flux
    for i in range(300):
        emitter.kustomization(f"app-{i % 5}", "reconciled", revision=revision(f"{i:08x}"), ready="True",
                              reason="ReconciliationSucceeded", message=f"event {i}")
    to_send = list(events)
    projector = await Projector(nc, ENV, clock, batch=32).start()
    try:
        async def produce() -> None:
            for event in to_send:
                await publisher.publish_flux(event)

        producer = asyncio.create_task(produce())
        await until(lambda: projector.applied_seq >= 60)
        await asyncio.to_thread(nats_server.restart, 0)  # SIGKILL, same ports and store
        await producer
        assert await projector.wait_caught_up(timeout=60) == 300
        info = await nc.jetstream().stream_info(stream_name(ENV))
        assert info.state.messages == 300  # retried publishes were de-duplicated by id
        snap = await projector.snapshot()
        for k in range(5):
            last = 295 + k
            assert snap[f"Application/app-{k}"]["message"] == f"event {last}"
        before = await projector.snapshot_bytes()
        await projector.rebuild()
        assert await projector.snapshot_bytes() == before
    finally:
        await projector.stop()


async def test_malformed_and_foreign_events_are_parked_and_the_fold_goes_on(
    nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock
) -> None:
    emitter, events = flux
    js = nc.jetstream()
    subject = flux_subject(ENV, "wordpress")

    async def raw(body: bytes, msg_id: str, subj: str = subject) -> None:
        await js.publish(subj, body, headers={"Nats-Msg-Id": msg_id})

    async with Projector(nc, ENV, clock) as projector:
        await raw(b"{not json", "m1")
        await raw(b"[1, 2]", "m2")
        await raw(json.dumps({"specversion": "1.0", "id": "m3", "subject": "wordpress", "data": {}}).encode(), "m3")
        await publisher.publish(subject, {"specversion": "1.0", "id": "m4", "type": "io.example.bogus",
                                          "subject": "wordpress", "data": {}})
        await publisher.publish(subject, {"specversion": "1.0", "id": "m5", "type": "io.fluxcd.kustomize.reconciled",
                                          "subject": "wordpress", "environment": "acme-prod", "data": {}})
        await publisher.publish(subject, {"specversion": "1.0", "id": "m6", "type": "io.fluxcd.kustomize.failed",
                                          "subject": "wordpress", "data": {"ready": "Maybe"}})
        await raw(b"{}", "m7", k8s_subject(ENV, "Deployment", "x", "y"))
        install(emitter, "wordpress", "a1b2c3d")
        await publish_all(publisher, events)
        assert (await card(projector, "wordpress"))["state"] == "Running"
        snap = await projector.snapshot()
    parked = {v["seq"]: v for k, v in snap.items() if k.startswith("Parked/")}
    assert sorted(parked) == [1, 2, 3, 4, 5, 6, 7]
    assert parked[1]["reason"].startswith("not JSON") and parked[1]["payload"] == "{not json"
    assert "not an object" in parked[2]["reason"]
    assert "'type'" in parked[3]["reason"] and parked[3]["id"] == "m3"
    assert "unknown event type 'io.example.bogus'" in parked[4]["reason"]
    assert "unknown Environment 'acme-prod'" in parked[5]["reason"]
    assert "data.ready" in parked[6]["reason"]
    assert parked[7]["subject"] == k8s_subject(ENV, "Deployment", "x", "y")
    assert snap[f"Environment/{ENV}"]["parked"] == 7
    assert projector.stats["parked"] == 7


async def test_publisher_refuses_bad_input(publisher: EventPublisher, flux: Flux) -> None:
    _, events = flux
    other = EventEmitter(events.append, VirtualClock(), vcluster="vc-beta", organization=OTHER_ORG,
                         environment="beta-dev")
    other.kustomization("x", "reconciled", revision="r", ready="True", reason="", message="")
    with pytest.raises(PublishError, match="not in Organization acme"):
        await publisher.publish_flux(events.pop())
    with pytest.raises(PublishError, match="without a string 'id'"):
        await publisher.publish_flux({"type": "io.fluxcd.kustomize.reconciled", "subject": "x", "environment": ENV})
    with pytest.raises(PublishError, match="event type"):
        await publisher.publish_k8s(ENV, "Deployment", "ns", "n", {}, "BOOKMARK")


async def test_another_org_cannot_read_the_stream_or_the_kv(
    nats_server: EmbeddedNats, nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock
) -> None:
    emitter, events = flux
    install(emitter, "wordpress", "a1b2c3d")
    beta = await connect(nats_server, OTHER_ORG)
    try:
        seen: list[str] = []

        async def record(msg: Msg) -> None:
            seen.append(msg.subject)

        sub = await beta.subscribe(f"ws.{ENV}.>", cb=record)
        async with Projector(nc, ENV, clock) as projector:
            await publish_all(publisher, events)
            await projector.wait_caught_up()
            assert (await projector.snapshot())["Application/wordpress"]["card"]["state"] == "Running"
        await beta.flush()
        await sub.unsubscribe()
        assert seen == []
        bjs = beta.jetstream()
        with pytest.raises(NotFoundError):
            await bjs.stream_info(stream_name(ENV))
        with pytest.raises(BucketNotFoundError):
            await bjs.key_value(kv_bucket(ENV))
        with pytest.raises(PublishError, match="not in Organization beta"):
            await EventPublisher(beta, OTHER_ORG).publish_flux({"id": "x", "type": "t", "subject": "wordpress",
                                                                "environment": ENV})
    finally:
        await beta.close()


async def test_watch_streams_changes_with_kv_revisions_and_resumes(
    nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock
) -> None:
    emitter, events = flux
    async with Projector(nc, ENV, clock) as projector:
        changes: list[KVChange] = []

        async def follow() -> None:
            async for change in projector.watch():
                changes.append(change)
                if change.key == "Application/wordpress" and change.value and \
                        change.value["card"]["state"] == "Running":
                    return

        watcher = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        install(emitter, "wordpress", "a1b2c3d")
        await publish_all(publisher, events)
        await asyncio.wait_for(watcher, 10)
        app_states = [c.value["card"]["state"] for c in changes if c.key == "Application/wordpress" and c.value]
        assert app_states == ["Installing", "Running"]
        revisions = [c.revision for c in changes]
        assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)

        resumed: list[KVChange] = []
        first_app = next(c for c in changes if c.key == "Application/wordpress")

        async def resume() -> None:
            async for change in projector.watch(since_revision=first_app.revision):
                resumed.append(change)
                if change.key == "Application/wordpress":
                    return

        await asyncio.wait_for(resume(), 10)
        assert resumed[-1].value is not None and resumed[-1].value["card"]["state"] == "Running"
        assert all(c.revision > first_app.revision for c in resumed)


async def test_throughput_publish_to_kv(nc: NATS, publisher: EventPublisher, flux: Flux, clock: VirtualClock) -> None:
    """A measurement, printed for the report; deliberately no timing assertion."""
    emitter, events = flux
    n = 2000
    for i in range(n):
        emitter.kustomization(f"app-{i % 20}", "reconciled" if i % 2 else "progressing", revision=revision(f"{i:08x}"),
                              ready="True" if i % 2 else "Unknown", reason="Progressing", message=f"event {i}")
    to_send = list(events)
    events.clear()
    async with Projector(nc, ENV, clock) as projector:
        began = time.perf_counter()
        for event in to_send:
            await publisher.publish_flux(event)
        published = time.perf_counter()
        await projector.wait_caught_up(timeout=120)
        done = time.perf_counter()
        writes = projector.stats["kv_writes"]
    print(f"\nprojector: {n} flux events; publish (acked, one by one) {n / (published - began):.0f} ev/s; "
          f"publish→KV {n / (done - began):.0f} ev/s end to end ({done - began:.2f} s, {writes} KV writes)")
    # Fold-only rate: replay the same stream into a rebuilt KV.
    async with Projector(nc, ENV, clock) as projector:
        began = time.perf_counter()
        await projector.rebuild()
        took = time.perf_counter() - began
    print(f"projector: rebuild of {n} events {n / took:.0f} ev/s ({took:.2f} s)")
