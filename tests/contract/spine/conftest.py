"""Fixtures for the spine's contract tests: a real nats-server, the spine and its read routes served over HTTP.

The spine, its NATS connections and the read routes share the API server's event loop, as in the
control plane; tests drive it from their own thread through HTTP, the thread-safe ``submit_*``
calls and ``run`` (a coroutine on the server's loop).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
import pytest
from starlette.applications import Starlette

from catalyst_sim.backends.embedded.nats import EmbeddedNats
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.api.state import ReadSide, routes_for
from catalyst_sim.control.events.wiring import EventSpine
from catalyst_sim.control.gitops.events import EventEmitter
from catalyst_sim.model.base import NotFoundError
from catalyst_sim.model.naming import parse_environment_name
from catalyst_sim.serving import ServerThread

ORG = "acme"
ENV = "acme-dev"


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    srv = EmbeddedNats(tmp_path_factory.mktemp("spine-nats"), [ORG])
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@dataclass
class Served:
    spine: EventSpine
    side: ReadSide
    server: ServerThread
    api: httpx.Client
    clock: VirtualClock
    apps: dict[str, list[str]] = field(default_factory=dict)

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return self.server.run_coroutine(coro, timeout)

    def settle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.spine.settled():
            if time.monotonic() > deadline:
                raise TimeoutError(f"spine not settled: {self.spine.stats}")
            time.sleep(0.005)

    def emitter(self, vcluster: str = "acme", env: str = ENV) -> EventEmitter:
        """The GitOps engine's own emitter, wired the way the control plane wires it."""
        instance = self.spine.instance_tag()
        return EventEmitter(lambda event: self.spine.submit_flux(event, instance=instance), self.clock,
                            vcluster=vcluster, organization=ORG, environment=env)

    def card(self, app: str, env: str = ENV) -> dict[str, Any]:
        response = self.api.get(f"/api/v1/environments/{env}/applications/{app}")
        assert response.status_code == 200, response.text
        return dict(response.json()["card"])


@pytest.fixture
def served(nats_server: EmbeddedNats) -> Iterator[Served]:
    clock = VirtualClock()
    spine = EventSpine(nats_server, clock)
    apps: dict[str, list[str]] = {ORG: []}

    def organization_of(env: str) -> str:
        if not spine.knows(env):
            raise NotFoundError(f"Environment {env!r} does not exist", object=f"Environment/{env}")
        return parse_environment_name(env).organization

    side = ReadSide(spine=spine, organization_of=organization_of, applications=lambda org: apps.get(org, []))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        nc = await nats.connect(**nats_server.connect_options(ORG))
        try:  # each test starts without the previous test's streams and buckets
            js = nc.jetstream()
            for info in await js.streams_info():
                await js.delete_stream(info.config.name)
        finally:
            await nc.close()
        await spine.start()
        try:
            yield
        finally:
            await spine.stop()

    server = ServerThread(Starlette(routes=routes_for(side), lifespan=lifespan), "spine-test").start()
    api = httpx.Client(base_url=server.url, timeout=30)
    try:
        spine.organization_created(ORG)
        spine.environment_created(ENV)
        result = Served(spine, side, server, api, clock, apps)
        result.settle()
        yield result
    finally:
        api.close()
        server.stop()


def install(emitter: EventEmitter, app: str, sha: str, branch: str = "develop") -> None:
    revision = f"{branch}@sha1:{sha}"
    emitter.kustomization(app, "progressing", revision=revision, ready="Unknown", reason="Progressing",
                          message="Reconciliation in progress")
    emitter.kustomization(app, "reconciled", revision=revision, ready="True", reason="ReconciliationSucceeded",
                          message=f"Applied revision: {revision}")


def until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(0.01)
