"""Fixtures for the read side's contract tests: one real nats-server per module, clean Environments.

Two Organizations (``acme``, ``beta``), each its own NATS account (R-NAME-16). Each test gets the
Environment ``acme-dev`` with its stream and KV bucket removed first, so tests do not see each
other's events; connections reconnect quickly because one test restarts the server.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from catalyst_sim.backends.embedded.nats import EmbeddedNats
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.events import EventPublisher, stream_name
from catalyst_sim.control.gitops.events import EventEmitter
from catalyst_sim.model.naming import kv_bucket

ORG = "acme"
OTHER_ORG = "beta"
ENV = "acme-dev"


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    srv = EmbeddedNats(tmp_path_factory.mktemp("projector-nats"), [ORG, OTHER_ORG])
    began = time.perf_counter()
    srv.start()
    print(f"\nnats-server {srv.version} ready in {(time.perf_counter() - began) * 1000:.0f} ms")
    try:
        yield srv
    finally:
        srv.stop()


async def connect(srv: EmbeddedNats, org: str = ORG) -> NATS:
    return await nats.connect(**srv.connect_options(org), connect_timeout=5, reconnect_time_wait=0.2,
                              max_reconnect_attempts=-1)


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[NATS]:
    """A connection as Organization acme, with acme-dev's stream and KV bucket wiped."""
    conn = await connect(nats_server)
    js = conn.jetstream()
    for stream in (stream_name(ENV), f"KV_{kv_bucket(ENV)}"):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def publisher(nc: NATS, clock: VirtualClock) -> EventPublisher:
    return EventPublisher(nc, ORG, clock=clock)


@pytest.fixture
def flux(clock: VirtualClock) -> tuple[EventEmitter, list[dict[str, Any]]]:
    """The GitOps engine's own emitter (gitops/events.py): realistic R-FLUX-04 envelopes."""
    events: list[dict[str, Any]] = []
    return EventEmitter(events.append, clock, vcluster="vc-acme", organization=ORG, environment=ENV), events


def revision(sha: str, branch: str = "develop") -> str:
    return f"{branch}@sha1:{sha}"


def deployment(app: str, ready: int, desired: int, *, name: str | None = None, rv: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name or app, "namespace": app, "resourceVersion": str(rv),
                     "labels": {"kustomize.toolkit.fluxcd.io/name": app}},
        "spec": {"replicas": desired}, "status": {"readyReplicas": ready},
    }


EmitFn = Callable[..., None]
