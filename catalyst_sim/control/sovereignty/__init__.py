"""Self-sovereignty (ARCHITECTURE.md §11.1, ADR-0002): the tethers, the dormant cutover and the
egress-block proof. :class:`Sovereignty` is what the control plane wires and the API calls."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from catalyst_sim.clock import Clock

from .context import Context, SovereigntyConfig, StepFailed, Transient
from .flux import PlatformFlux
from .runner import CutoverConflict, CutoverRunner
from .tethers import FLUX_NS, JOB_NAMES, TETHERS, tether_states, upstream_repo_url

__all__ = ["JOB_NAMES", "TETHERS", "CutoverConflict", "Sovereignty", "SovereigntyConfig"]


class Sovereignty:
    def __init__(self, config: SovereigntyConfig, clock: Clock) -> None:
        self.config = config
        self.context = Context(config, clock)
        self.flux = PlatformFlux(self.context)
        self.events: list[dict[str, Any]] = []
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self.runner = CutoverRunner(self.context, self.flux, self._publish)

    def _publish(self, event: dict[str, Any]) -> None:
        event = {"id": len(self.events) + 1, **event}
        self.events.append(event)
        for queue in list(self._listeners):
            queue.put_nowait(event)

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.discard(queue)

    @property
    def idle(self) -> bool:
        return self.flux.idle and self.runner.idle

    async def start(self) -> None:
        """Resume a cutover the status ConfigMap says was running. The host's Flux is simulated from the first
        cutover on: on a dormant Sovereign its objects keep their handover status, so scenarios that never
        touch sovereignty pay nothing for it (the cutover's steps and proof reconcile on demand anyway)."""
        await self.runner.resume()
        if self.runner.running or (await asyncio.to_thread(self.runner.read_status))["phase"] != "Dormant":
            await self.flux.start()

    async def start_cutover(self, operator: str, skip: list[str]) -> dict[str, Any]:
        """Start the cutover (:class:`CutoverConflict` while one runs) and the host's periodic Flux with it."""
        status = await self.runner.start(operator, skip)
        await self.flux.start()
        return status

    async def stop(self) -> None:
        await self.runner.stop()
        await self.flux.stop()

    async def reset(self) -> None:
        """The harness put the clusters back to the handed-over state: forget this run entirely."""
        await self.stop()
        self.context.reconnect()
        self.flux.reset()
        self.events.clear()
        self.runner.last_proof = None
        shutil.rmtree(self.context.workdir / "mirror", ignore_errors=True)
        await self.start()

    def close(self) -> None:
        self.context.close()

    # -- read side ------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {**self.runner.read_status(), "running": self.runner.running}

    def tethers(self) -> dict[str, list[dict[str, Any]]]:
        kinds = ("GitRepository", "HelmRepository", "Deployment", "Provider")
        out = {}
        for cluster, kube in self.context.kubes.items():
            objects = {kind: kube.list(kind, None if kind == "Provider" else
                                       ("catalyst-system" if kind == "Deployment" else FLUX_NS)) for kind in kinds}
            objects["ConfigMap"] = [o for o in (kube.get("ConfigMap", "kube-system", n) for n in
                                                ("k3s-registries", "os-package-mirrors")) if o]
            objects["Secret"] = [o for o in [kube.get("Secret", FLUX_NS, "ghcr-pull")] if o]
            out[cluster] = tether_states(objects)
        return out

    def upstream(self) -> dict[str, Any]:
        """What catalyst-api reads as its GitOps repo, and whether it answers (tether 4)."""
        deployment = self.context.primary.get("Deployment", "catalyst-system", "catalyst-api")
        url, fallback = upstream_repo_url(deployment)
        try:
            head = self.context.ls_remote(url)
        except (Transient, StepFailed, OSError) as exc:
            return {"url": url, "fallback": fallback, "reachable": False, "error": str(exc)}
        return {"url": url, "fallback": fallback, "reachable": True, "head": head}
