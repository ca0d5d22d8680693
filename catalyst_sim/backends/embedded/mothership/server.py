"""``Mothership``: the upstream a freshly handed-over Sovereign is tethered to, on loopback.

It starts, once per session:

* a second Gitea (the forge emulator) holding the public Catalyst repo ``openova-io/openova``,
  reached as ``github.com``;
* an OCI registry server with two name-based hosts, ``ghcr.io`` (images and the bootstrap-kit
  charts) and ``harbor.openova.io`` (a Harbor with the seven proxy-cache projects, the cold-start
  pull path);
* a Toxiproxy proxy in front of each of the three mothership hosts: the :class:`~.network.Network`
  resolves them **only** to their proxy, so disabling a proxy is the firewall black-holing that host
  (R-DOD-01) and toxics are a flaky WAN;
* the public registries the proxy-cache projects front (``docker.io``, ``quay.io`` ...), not behind
  proxies because the deny-list does not cover them (R-DOD-05);
* the Sovereign's own (empty) Harbor ``harbor.<sovereign domain>``, where the cutover moves the
  image path: the embedded backend has no other registry.

Registries are emulated (``docker-registry`` is not installed here); the realism ledger says so.
``reset()`` puts all of it back to the handed-over state in milliseconds: proxies enabled without
toxics, registries restored to their seeded content, the local Harbor empty.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx

from catalyst_sim.backends.embedded.forge.server import EmbeddedForge
from catalyst_sim.backends.embedded.toxiproxy import EmbeddedToxiproxy
from catalyst_sim.backends.endpoints import Component
from catalyst_sim.clock import Clock
from catalyst_sim.serving import ServerThread

from . import content
from .network import Network
from .oci import Registry
from .registry_api import create_app

REGISTRY_EMULATOR = "catalyst-sim OCI distribution + Harbor project API emulator"
REGISTRY_VERSION = "distribution-spec v1.1 subset"


def proxy_name(host: str) -> str:
    return f"mothership-{host.replace('.', '-')}"


class Mothership:
    def __init__(self, root: Path, clock: Clock, *, sovereign_domain: str, seed: int = 0,
                 toxiproxy: EmbeddedToxiproxy | None = None) -> None:
        self.root = Path(root)
        self.clock = clock
        self.local_harbor_host = f"harbor.{sovereign_domain}"
        self.network = Network()
        self._own_toxiproxy = toxiproxy is None
        self.toxiproxy = toxiproxy or EmbeddedToxiproxy(seed=seed)
        self.forge = EmbeddedForge(self.root / "forge", clock, admin_user="openova-bot", name="mothership-forge")
        fetch = self.network.fetch
        self.registries: dict[str, Registry] = {
            "ghcr.io": Registry("ghcr.io"),
            "harbor.openova.io": Registry("harbor.openova.io", harbor=True, fetch=fetch),
            **{host: Registry(host) for host in content.PUBLIC_REGISTRIES},
        }
        self.local_harbor = Registry(self.local_harbor_host, harbor=True, fetch=fetch)
        self._servers: dict[str, ServerThread] = {}
        self._baseline: dict[str, dict[str, Any]] = {}
        self._local_baseline: dict[str, Any] = {}
        self._api: httpx.Client | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Mothership:
        if self._servers:
            return self
        try:
            self.toxiproxy.start()
            self._api = httpx.Client(base_url=self.toxiproxy.url, timeout=10)
            self.forge.start()
            mothership_hosts = {h: self.registries[h] for h in ("ghcr.io", "harbor.openova.io")}
            public = {h: self.registries[h] for h in content.PUBLIC_REGISTRIES}
            self._servers["mothership-registry"] = ServerThread(create_app(mothership_hosts), "mothership-registry")
            self._servers["public-registries"] = ServerThread(create_app(public), "public-registries")
            self._servers["sovereign-harbor"] = ServerThread(
                create_app({self.local_harbor_host: self.local_harbor}, default=self.local_harbor_host),
                "sovereign-harbor")
            for server in self._servers.values():
                server.start()
            upstreams = {"github.com": f"127.0.0.1:{self.forge.port}",
                         "ghcr.io": f"127.0.0.1:{self._servers['mothership-registry'].port}",
                         "harbor.openova.io": f"127.0.0.1:{self._servers['mothership-registry'].port}"}
            for host, upstream in upstreams.items():
                proxy = self._api.post("/proxies", json={"name": proxy_name(host), "listen": "127.0.0.1:0",
                                                         "upstream": upstream, "enabled": True})
                proxy.raise_for_status()
                self.network.add(host, proxy.json()["listen"])
            for host in content.PUBLIC_REGISTRIES:
                self.network.add(host, f"127.0.0.1:{self._servers['public-registries'].port}")
            self.network.add(self.local_harbor_host, f"127.0.0.1:{self._servers['sovereign-harbor'].port}")
            content.seed_registries(self.registries)
            harbor = self.registries["harbor.openova.io"]
            for project, upstream in content.PROXY_PROJECTS.items():
                endpoint = harbor.create_endpoint(f"{upstream}-upstream", "docker-registry", f"https://{upstream}")
                harbor.create_project(project, registry_id=endpoint.id)
            self._publish_catalyst_repo()
        except BaseException:
            self.stop()
            raise
        self._baseline = {host: registry.snapshot() for host, registry in self.registries.items()}
        self._local_baseline = self.local_harbor.snapshot()
        return self

    def _publish_catalyst_repo(self) -> None:
        """``github.com/openova-io/openova``: the org, the public repo and one commit pushed by git."""
        admin = httpx.Client(base_url=f"{self.forge.url}/api/v1",
                             headers={"Authorization": f"token {self.forge.token}"})
        with admin:
            admin.post("/orgs", json={"username": content.CATALYST_REPO_OWNER, "visibility": "public"}
                       ).raise_for_status()
            admin.post(f"/orgs/{content.CATALYST_REPO_OWNER}/repos",
                       json={"name": content.CATALYST_REPO, "private": False, "default_branch": "main"}
                       ).raise_for_status()
        with tempfile.TemporaryDirectory(dir=self.root) as work:
            for path, text in content.repo_files().items():
                target = Path(work) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            env = {"GIT_AUTHOR_NAME": "openova", "GIT_AUTHOR_EMAIL": "bot@openova.invalid",
                   "GIT_COMMITTER_NAME": "openova", "GIT_COMMITTER_EMAIL": "bot@openova.invalid",
                   "GIT_CONFIG_NOSYSTEM": "1", "HOME": work, "PATH": "/usr/local/bin:/usr/bin:/bin"}
            url = self.forge.clone_url(f"{content.CATALYST_REPO_OWNER}/{content.CATALYST_REPO}")
            for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bootstrap-kit"],
                         ["push", "-q", url, "main"]):
                subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()
        if self._api is not None:
            self._api.close()
            self._api = None
        self.forge.stop()
        if self._own_toxiproxy:
            self.toxiproxy.stop()
        self.network.close()

    def reset(self) -> None:
        """Back to the handed-over state: every proxy enabled without toxics, registries as seeded."""
        assert self._api is not None
        self._api.post("/reset").raise_for_status()
        for host, registry in self.registries.items():
            registry.restore(self._baseline[host])
        self.local_harbor.restore(self._local_baseline)

    # -- what the harness and the report see --------------------------------------------------------
    @property
    def toxiproxy_url(self) -> str:
        return self.toxiproxy.url

    def proxies(self) -> dict[str, str]:
        """Mothership host -> its Toxiproxy proxy name."""
        return {host: proxy_name(host) for host in content.MOTHERSHIP_HOSTS}

    def components(self) -> list[Component]:
        return [
            Component("toxiproxy", real=False, implementation="catalyst-sim Toxiproxy emulator",
                      version=self.toxiproxy.version, url=self.toxiproxy.url),
            Component("mothership-gitea", real=False, implementation="catalyst-sim Gitea API emulator "
                      "(github.com/openova-io/openova)", version=self.forge.version),
            Component("oci-registries", real=False, implementation=f"{REGISTRY_EMULATOR} (ghcr.io, harbor.openova.io, "
                      f"public registries, {self.local_harbor_host}); docker-registry is not installed",
                      version=REGISTRY_VERSION),
        ]
