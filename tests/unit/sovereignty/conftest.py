"""A handed-over Sovereign cluster, the mothership behind Toxiproxy, and Sovereignty on its own loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from catalyst_sim.backends.embedded.forge.server import EmbeddedForge
from catalyst_sim.backends.embedded.kube.server import KubeEmulator
from catalyst_sim.backends.embedded.mothership import Mothership
from catalyst_sim.backends.embedded.mothership.handover import hand_over
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.sovereignty import Sovereignty, SovereigntyConfig

CLUSTER = "hz-fsn-mgt-prod"


@dataclass
class World:
    clock: VirtualClock
    mothership: Mothership
    sovereignty: Sovereignty
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def settle(self) -> None:
        calm, deadline = 0, time.monotonic() + 60
        while calm < 2:
            assert time.monotonic() < deadline, "sovereignty did not settle"
            calm = calm + 1 if self.sovereignty.idle else 0
            time.sleep(0.002)

    def until_done(self, limit: int = 2000) -> dict[str, Any]:
        """Jump from timer to timer (a discrete-event run) until the cutover or proof stops running."""
        for _ in range(limit):
            self.settle()
            if not self.sovereignty.runner.running:
                break
            due = self.clock.next_timer_at()
            assert due is not None, "a running cutover must wait on the clock"
            self.clock.set(due)
        return self.sovereignty.status()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = VirtualClock()
    mothership = Mothership(tmp_path / "mothership", clock, sovereign_domain="omantel.openova.io").start()
    forge = EmbeddedForge(tmp_path / "forge", clock).start()
    kube = KubeEmulator(clock).start()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sovereignty = None
    try:
        mothership.network.add("gitea-http.gitea", f"127.0.0.1:{forge.port}")
        hand_over(kube.add_cluster(CLUSTER), mothership.network)
        config = SovereigntyConfig(
            clusters={CLUSTER: kube.kubeconfig(CLUSTER, tmp_path / "kubeconfig.json")}, network=mothership.network,
            gitea_url=forge.url, gitea_token=forge.token, gitea_admin=forge.admin,
            local_harbor=mothership.local_harbor_host, toxiproxy_url=mothership.toxiproxy_url,
            mothership_proxies=mothership.proxies(), workdir=tmp_path / "control-plane")
        sovereignty = Sovereignty(config, clock)
        world = World(clock, mothership, sovereignty, loop)
        world.run(sovereignty.start())
        yield world
    finally:
        if sovereignty is not None:
            asyncio.run_coroutine_threadsafe(sovereignty.stop(), loop).result(30)
            sovereignty.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        kube.stop()
        forge.stop()
        mothership.stop()
