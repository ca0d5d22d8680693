"""Contract tests of the wired spine: producers → real JetStream → projector → KV → API and SSE (issue 4).

What is pinned: GitOps envelopes submitted the way the control plane does reach the card API and
SSE; two SSE clients and the snapshot agree on every transition; Last-Event-ID resumes; a GitOps
engine restarted with ids from 1 again is not swallowed by de-duplication; pull requests make
Pending approval; bad input (unknown Environment, malformed message) is refused or parked and the
fold goes on; a client that stops reading is cut off with bounded buffering; reset is cheap.
"""

from __future__ import annotations

import json
import socket
import time

import nats
import pytest

from catalyst_sim.backends.embedded.nats import EmbeddedNats
from catalyst_sim.control.api.state import SSE_BUFFER
from catalyst_sim.harness.sse import SseClient
from catalyst_sim.model.naming import flux_subject

from .conftest import ENV, ORG, Served, install, until


def test_flux_events_reach_the_card_api_history_and_summary(served: Served) -> None:
    served.apps[ORG] = ["blog", "cache"]
    flux = served.emitter()
    assert served.card("blog")["state"] == "Installing"  # no record yet: waiting for its first reconcile
    install(flux, "blog", "a1b2c3d")
    flux.kustomization("cache", "failed", revision="develop@sha1:bbbbbbb", ready="False", reason="BuildFailed",
                       message="kustomize build failed: values.yaml: mapping values are not allowed")
    served.settle()
    assert served.card("blog")["state"] == "Running"
    assert served.card("cache")["state"] == "Failed" and "values.yaml" in served.card("cache")["text"]
    history = served.api.get(f"/api/v1/environments/{ENV}/applications/blog/history").json()["items"]
    assert [e["state"] for e in history] == ["Installing", "Running"]
    summary = served.api.get(f"/api/v1/environments/{ENV}/summary").json()
    assert summary["applications"] == {"blog": "Running", "cache": "Failed"}
    assert served.api.get(f"/api/v1/environments/{ENV}/applications/nope").status_code == 404
    assert served.api.get("/api/v1/environments/acme-prod/summary").status_code == 404


def test_two_sse_clients_and_the_snapshot_agree_on_every_transition(served: Served) -> None:
    served.apps[ORG] = ["blog"]
    url = served.server.url
    path = f"/api/v1/environments/{ENV}/events"
    with SseClient(url, path, name="tab-1") as tab1, SseClient(url, path, name="tab-2") as tab2:
        until(lambda: tab1.synced() and tab2.synced(), what="both tabs synced")
        flux = served.emitter()
        install(flux, "blog", "a1b2c3d")
        flux.kustomization("blog", "failed", revision="develop@sha1:c0ffee1", ready="False", reason="HealthCheckFailed",
                           message="ImagePullBackOff")
        flux.kustomization("blog", "reconciled", revision="develop@sha1:c0ffee2", ready="True",
                           reason="ReconciliationSucceeded", message="Applied revision: develop@sha1:c0ffee2")
        served.settle()
        history = [e["state"] for e in served.api.get(
            f"/api/v1/environments/{ENV}/applications/blog/history").json()["items"]]
        until(lambda: tab1.card_states("blog") == history and tab2.card_states("blog") == history,
              what=f"both tabs see {history}: {tab1.card_states('blog')} {tab2.card_states('blog')}")
        until(lambda: tab1.snapshot()[1] == tab2.snapshot()[1], what="both tabs hold the same records")
    assert history == ["Installing", "Running", "Failed", "Running"]
    card = served.card("blog")
    assert tab1.state["Application/blog"]["card"] == {k: v for k, v in card.items() if k != "vclusters"}


def test_sse_resumes_from_last_event_id_with_what_changed_since(served: Served) -> None:
    served.apps[ORG] = ["blog", "shop"]
    flux = served.emitter()
    install(flux, "blog", "a1b2c3d")
    served.settle()
    path = f"/api/v1/environments/{ENV}/events"
    with SseClient(served.server.url, path) as first:
        until(first.synced, what="first client synced")
        seen = first.revision()
    install(flux, "shop", "5555555")
    served.settle()
    with SseClient(served.server.url, path, last_event_id=str(seen)) as resumed:
        until(resumed.synced, what="resumed client synced")
        events, state = resumed.snapshot()
    keys = {e.data["key"] for e in events if e.id}
    assert "Application/shop" in keys and "Application/blog" not in keys  # only what changed after `seen`
    assert all(int(e.id) > seen for e in events if e.id)
    assert state["Application/shop"]["card"]["state"] == "Running"
    bad = served.api.get(path, headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422 and "Last-Event-ID" in bad.text


def test_a_restarted_gitops_engine_reusing_event_ids_is_not_deduplicated(served: Served) -> None:
    served.apps[ORG] = ["blog"]
    before = served.emitter()
    before.kustomization("blog", "progressing", revision="develop@sha1:1111111", ready="Unknown",
                         reason="Progressing", message="")
    served.settle()
    after = served.emitter()  # a new engine instance: its ids start at "acme-1" again
    after.kustomization("blog", "reconciled", revision="develop@sha1:1111111", ready="True",
                        reason="ReconciliationSucceeded", message="Applied revision")
    served.settle()
    assert served.spine.stats["duplicates"] == 0
    assert served.card("blog")["state"] == "Running"


def test_an_open_pull_request_into_the_branch_is_pending_approval(served: Served) -> None:
    served.apps[ORG] = ["orders-db"]
    served.spine.environment_created("acme-prod")
    flux = served.emitter(env="acme-prod")
    install(flux, "orders-db", "7777777", branch="main")
    served.spine.submit_pull_request(ORG, "orders-db", 3, open=True, base="main", head_sha="abcdef1",
                                     action="opened")
    served.spine.submit_pull_request(ORG, "orders-db", 4, open=True, base="staging", head_sha="abcdef2")
    served.settle()
    assert served.card("orders-db", "acme-prod")["state"] == "Pending approval"
    assert served.card("orders-db", ENV)["state"] == "Installing"  # a PR into main is not acme-dev's
    served.spine.submit_pull_request(ORG, "orders-db", 3, open=False, base="main", head_sha="abcdef1",
                                     action="closed")
    served.settle()
    assert served.card("orders-db", "acme-prod")["state"] == "Running"


def test_unknown_environment_is_refused_and_malformed_events_are_parked(
    served: Served, nats_server: EmbeddedNats
) -> None:
    served.apps[ORG] = ["blog"]
    served.emitter(env="acme-uat").kustomization("blog", "reconciled", revision="x", ready="True", reason="",
                                                 message="")
    assert any("unknown Environment 'acme-uat'" in r.reason for r in served.spine.rejected)

    async def publish_raw() -> None:
        nc = await nats.connect(**nats_server.connect_options(ORG))
        try:
            js = nc.jetstream()
            await js.publish(flux_subject(ENV, "blog"), b"{not json", stream="WS_ACME_DEV")
            await js.publish(flux_subject(ENV, "blog"), json.dumps({"specversion": "1.0", "id": "x"}).encode(),
                             stream="WS_ACME_DEV")
        finally:
            await nc.close()

    served.run(publish_raw())
    install(served.emitter(), "blog", "a1b2c3d")
    served.settle()
    parked = served.api.get(f"/api/v1/environments/{ENV}/parked").json()["items"]
    assert [p["reason"].split(":")[0] for p in parked] == ["not JSON", "missing CloudEvents attribute 'type'"]
    assert served.card("blog")["state"] == "Running"  # the fold went on after them
    assert served.api.get(f"/api/v1/environments/{ENV}/summary").json()["parked"] == 2


def test_an_sse_client_that_stops_reading_is_cut_off_with_bounded_buffering(served: Served) -> None:
    served.apps[ORG] = [f"app-{i}" for i in range(40)]
    host, port = served.server.host, served.server.port
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(f"GET /api/v1/environments/{ENV}/events HTTP/1.1\r\nHost: {host}\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())
        until(lambda: served.side.stats["streams_open"] >= 1, what="the stream is open")
        flux = served.emitter()
        message = "x" * 2000  # big records fill the socket buffers quickly
        rounds = 0
        while served.side.stats["lagging_closed"] == 0:
            for app in served.apps[ORG]:
                flux.kustomization(app, "progressing", revision=f"develop@sha1:{rounds:07x}", ready="Unknown",
                                   reason="Progressing", message=f"{message} {rounds}")
            served.settle(60)
            rounds += 1
            assert rounds < 200, served.side.stats
        assert served.side.stats["max_buffered"] <= SSE_BUFFER
    finally:
        sock.close()
    with SseClient(served.server.url, f"/api/v1/environments/{ENV}/events") as fresh:  # others are unaffected
        until(fresh.synced, what="a new client syncs")


def test_reset_deletes_the_streams_and_buckets_quickly(served: Served, nats_server: EmbeddedNats) -> None:
    served.apps[ORG] = ["blog"]
    install(served.emitter(), "blog", "a1b2c3d")
    served.settle()
    began = time.perf_counter()
    served.run(served.spine.reset())
    took = time.perf_counter() - began
    print(f"\nspine reset: {took * 1000:.1f} ms")

    async def streams() -> list[str]:
        nc = await nats.connect(**nats_server.connect_options(ORG))
        try:
            return [s.config.name for s in await nc.jetstream().streams_info()]
        finally:
            await nc.close()

    assert served.run(streams()) == []
    assert not served.spine.knows(ENV)
    with pytest.raises(AssertionError):
        served.card("blog")  # the Environment is gone with the reset: 404
