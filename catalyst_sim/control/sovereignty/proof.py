"""Step 8, the egress-block proof (R-DOD-01..03): deny egress to github.com, ghcr.io and
harbor.openova.io for 10 minutes while every reconcile, image pull and catalyst-api call stays green.

The deny-egress NetworkPolicy is created in each cluster; on the embedded backend Toxiproxy is the
network that enforces it (each mothership host's proxy is disabled for the hold and re-enabled
after, also on failure). Every minute of the hold Flux is made to reconcile everything, catalyst-api's
repo is read, and twice a probe pod pulls every bootstrap-kit image. Each failure names the tether
it proves still attached, so a tethered Sovereign fails this same test for the right reason. The first
red sample ends the hold: the proof has failed, and the block is lifted so the Sovereign keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from catalyst_sim.backends.embedded.mothership import content

from .context import Context, StepFailed, Transient
from .flux import PlatformFlux, ready_condition
from .steps import wait_pulled
from .tethers import FLUX_NS, tether, upstream_repo_url

POLICY = "deny-egress-mothership"
SAMPLE = 60.0
PULL_AT = (0.0, 300.0)
FLUX_TETHER = {"GitRepository": 1, "Kustomization": 1, "HelmRepository": 3, "HelmRelease": 3}


@dataclass
class ProofResult:
    held: bool = False
    failures: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 0

    def broken(self) -> list[str]:
        numbers = sorted({f["tether"] for f in self.failures})
        return [f"tether {n}: {tether(n).name}" for n in numbers]

    def as_dict(self) -> dict[str, Any]:
        return {"held": self.held, "samples": self.samples, "brokenTethers": self.broken(),
                "failures": self.failures[:50]}


def _toxiproxy(ctx: Context, enabled: bool) -> None:
    with httpx.Client(base_url=ctx.config.toxiproxy_url, timeout=10) as api:
        for proxy in ctx.config.mothership_proxies.values():
            api.post(f"/proxies/{proxy}", json={"enabled": enabled}).raise_for_status()


def _policy(hosts: list[str]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": POLICY, "namespace": FLUX_NS,
                         "annotations": {"catalyst.openova.io/deny-egress-hosts": ",".join(hosts)}},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                     "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}


class EgressProof:
    def __init__(self, context: Context, flux: PlatformFlux, note: Callable[[str], None],
                 countdown: Callable[[float], None]) -> None:
        self.context, self.flux, self.note, self.countdown = context, flux, note, countdown

    async def run(self) -> ProofResult:
        ctx = self.context
        result = ProofResult()
        hosts = sorted(ctx.config.mothership_proxies)
        try:
            for kube in ctx.kubes.values():
                await ctx.blocking(kube.ensure, _policy(hosts))
            await ctx.blocking(_toxiproxy, ctx, False)
            self.note(f"egress to {', '.join(hosts)} denied; holding for {ctx.config.hold_seconds:.0f}s")
            elapsed = 0.0
            while elapsed <= ctx.config.hold_seconds:
                self.countdown(ctx.config.hold_seconds - elapsed)
                await self._sample(result, elapsed)
                if result.failures:  # red: the proof has failed; lift the block so the Sovereign keeps working
                    self.note(f"red after {elapsed:.0f}s of the hold: lifting the egress block (R-CUT-07)")
                    break
                if elapsed >= ctx.config.hold_seconds:
                    break
                await ctx.sleep(SAMPLE)
                elapsed += SAMPLE
        finally:
            await ctx.blocking(_toxiproxy, ctx, True)
            for kube in ctx.kubes.values():
                await ctx.blocking(kube.delete, "NetworkPolicy", FLUX_NS, POLICY)
            self.countdown(0.0)
        result.held = not result.failures
        return result

    def _fail(self, result: ProofResult, number: int, where: str, message: str, elapsed: float) -> None:
        key = (number, where)
        if any((f["tether"], f["object"]) == key for f in result.failures):
            return
        result.failures.append({"tether": number, "object": where, "message": message[:400], "atSecond": elapsed})
        self.note(f"red after {elapsed:.0f}s of the hold: {where}: {message[:200]} (tether {number})")

    async def _sample(self, result: ProofResult, elapsed: float) -> None:
        ctx = self.context
        result.samples += 1
        await self.flux.reconcile_now(force=True)
        for cluster, kube in ctx.kubes.items():
            for kind, number in FLUX_TETHER.items():
                for obj in await ctx.blocking(kube.list, kind, FLUX_NS):
                    cond = ready_condition(obj) or {}
                    if cond.get("status") != "True":
                        self._fail(result, number, f"{cluster}/{kind}/{obj['metadata']['name']}",
                                   cond.get("message", "not Ready"), elapsed)
            deployment = await ctx.blocking(kube.get, "Deployment", "catalyst-system", "catalyst-api")
            if deployment is not None:
                url, fallback = upstream_repo_url(deployment)
                try:
                    await ctx.blocking(ctx.ls_remote, url)
                except (Transient, StepFailed, OSError) as exc:
                    self._fail(result, 4, f"{cluster}/catalyst-api", f"reads {url}"
                               f"{' (upstream fallback)' if fallback else ''}: {exc}", elapsed)
            if elapsed in PULL_AT:
                await self._pull_probe(result, cluster, kube, elapsed)

    async def _pull_probe(self, result: ProofResult, cluster: str, kube: Any, elapsed: float) -> None:
        ctx = self.context
        images = content.all_images()
        name = f"egress-probe-{int(elapsed)}"
        await ctx.blocking(kube.delete, "Pod", "kube-system", name)
        await ctx.blocking(kube.create, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"restartPolicy": "Never", "containers": [
                {"name": f"c{i}", "image": image, "imagePullPolicy": "Always"} for i, image in enumerate(images)]}})
        # Long enough for the slowest node pull stage (the host clusters' kubelets take 30 s to pull).
        problem = await wait_pulled(ctx, kube, "kube-system", name, budget=120.0)
        if problem:
            config = ((await ctx.blocking(kube.get, "ConfigMap", "kube-system", "k3s-registries") or {})
                      .get("data") or {}).get("registries.yaml", "")
            number = 2 if "harbor.openova.io" in config else 7  # still routed via the mothership, or not cached
            pod = await ctx.blocking(kube.get, "Pod", "kube-system", name) or {}
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (status.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                    self._fail(result, number, f"{cluster}/image {status['image']}",
                               waiting.get("message", waiting["reason"]), elapsed)
        await ctx.blocking(kube.delete, "Pod", "kube-system", name)
