"""What the cutover works with: the Sovereign's clusters, its network, its Gitea and Harbor, the clock.

Everything is reached over the wire: the Kubernetes API (:class:`~.kube.KubeClient`), Gitea's API and
git, the OCI distribution and Harbor APIs, and Toxiproxy's API for the egress block (on the embedded
backend Toxiproxy is the CNI that enforces the deny-egress NetworkPolicy).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from catalyst_sim.backends.embedded.mothership.network import Network
from catalyst_sim.clock import Clock

from .kube import KubeClient

T = TypeVar("T")
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/local/bin:/usr/bin:/bin",
           "GIT_AUTHOR_NAME": "self-sovereign-cutover", "GIT_AUTHOR_EMAIL": "cutover@catalyst.invalid",
           "GIT_COMMITTER_NAME": "self-sovereign-cutover", "GIT_COMMITTER_EMAIL": "cutover@catalyst.invalid"}


class StepFailed(Exception):
    """A step's post-condition (or the previous step's effect it checks) does not hold: the reason."""


class Transient(Exception):
    """A network failure worth retrying (a reset connection, a refused port, a timeout)."""


@dataclass
class SovereigntyConfig:
    clusters: dict[str, Path]  # cluster name -> admin kubeconfig
    network: Network
    gitea_url: str  # the Sovereign's own Gitea (served as gitea-http.gitea:3000 inside the cluster)
    gitea_token: str
    gitea_admin: str
    local_harbor: str  # host name, e.g. harbor.omantel.openova.io
    toxiproxy_url: str
    mothership_proxies: dict[str, str]  # host -> Toxiproxy proxy name
    workdir: Path
    hold_seconds: float = 600.0  # R-DOD-01: 10 minutes
    retries: int = 8
    extra: dict[str, Any] = field(default_factory=dict)


class Context:
    def __init__(self, config: SovereigntyConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.network = config.network
        self.kubes = {name: KubeClient(path) for name, path in config.clusters.items()}
        self.workdir = config.workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.busy = 0  # running cutover work not waiting on the clock (the harness settles on it)

    async def sleep(self, seconds: float) -> None:
        """Wait on the clock; while waiting this work does not count as busy, and it counts again
        from the instant its timer fires (in the clock's thread), so settling never sees a gap."""
        loop = asyncio.get_running_loop()
        woke: asyncio.Future[None] = loop.create_future()
        fired = False

        def fire() -> None:
            nonlocal fired
            fired = True
            self.busy += 1
            loop.call_soon_threadsafe(lambda: woke.done() or woke.set_result(None))

        self.busy -= 1
        handle = self.clock.call_at(self.clock.now() + timedelta(seconds=seconds), fire)
        try:
            await woke
        except asyncio.CancelledError:
            handle.cancel()
            if not fired:
                self.busy += 1
            raise

    @property
    def primary(self) -> KubeClient:
        return next(iter(self.kubes.values()))

    def close(self) -> None:
        for kube in self.kubes.values():
            kube.close()

    def reconnect(self) -> None:
        """Read the kubeconfigs again: a recreated cluster has new credentials at the same path."""
        self.close()
        self.kubes = {name: KubeClient(path) for name, path in self.config.clusters.items()}

    def git(self, *args: str, url: str | None = None, cwd: Path | None = None) -> str:
        options = self.network.git_config(url) if url else []
        env = {**GIT_ENV, "HOME": str(self.workdir)}
        result = subprocess.run(["git", *options, *args], cwd=cwd or self.workdir, env=env, capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:
            message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
            raise Transient(f"git {args[0]} {url or ''}: {message}")
        return result.stdout

    def ls_remote(self, url: str, ref: str = "refs/heads/main") -> str:
        """The commit ``ref`` points at on ``url``, fetched through the simulated network."""
        out = self.git("ls-remote", url, ref, url=url)
        if not out.strip():
            raise StepFailed(f"{url} has no {ref}")
        return out.split()[0]

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def retrying(self, what: str, fn: Callable[..., T], *args: Any, on_retry: Callable[[str], None]
                       | None = None) -> T:
        """Run ``fn`` in a thread; on a network failure wait (virtual time, doubling) and try again."""
        delay = 5.0
        for attempt in range(1, self.config.retries + 1):
            try:
                return await self.blocking(fn, *args)
            except (Transient, OSError, httpx.TransportError) as exc:
                if attempt == self.config.retries:
                    raise StepFailed(f"{what} failed after {attempt} attempts: {exc}") from exc
                if on_retry is not None:
                    on_retry(f"{what}: attempt {attempt} failed ({exc}); retrying in {delay:.0f}s")
                await self.sleep(delay)
                delay = min(delay * 2, 60.0)
        raise AssertionError("unreachable")
