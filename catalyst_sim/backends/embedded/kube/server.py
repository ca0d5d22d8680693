"""The Kubernetes emulator as the embedded backend uses it: one server, many clusters.

A backend hands out kubeconfigs (the wire protocol is the port, DESIGN.md §1); it never gives
steps in-process access to a cluster's objects. What it may touch in-process is the simulation
itself — the kubelet's stage timings and injected failures — plus an object dump for evidence
bundles::

    with KubeEmulator(clock) as kube:
        sovereign = kube.add_cluster("sovereign")
        path = kube.kubeconfig("sovereign", run_dir / "sovereign.kubeconfig")
        sovereign.inject_image_pull_failure(lambda image: image.startswith("ghcr.io/bad/"))
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from ....clock import Clock, WallClock
from ....serving import ServerThread
from ...endpoints import Component
from .api import ClusterEndpoint, KubeApi
from .controllers import Controllers
from .kubelet import CrashRule, ImageRule, Kubelet, KubeletBehaviour, PodStages
from .openapi import VERSION
from .patch import clone
from .store import ClusterStore, Stats
from .tls import TLSMaterial, generate

_CLUSTER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class KubeEmulatorError(RuntimeError):
    pass


class _TLSServerThread(ServerThread):
    """:class:`ServerThread` serving HTTPS: uvicorn takes our in-memory SSL context."""

    def __init__(self, app: Any, name: str, context: ssl.SSLContext) -> None:
        super().__init__(app, name)
        self._context = context

    async def _serve(self) -> None:
        assert self._server is not None and self._sock is not None
        self.loop = asyncio.get_running_loop()
        self._server.config.ssl_context_factory = lambda config, default: self._context
        # serving.bind_free_socket creates the socket with proto 0, and asyncio only sets TCP_NODELAY
        # on sockets whose proto is IPPROTO_TCP: responses (headers, then body) then meet delayed
        # ACKs and every keep-alive request costs ~40 ms. A socket object re-created from the same
        # descriptor reports its real protocol, so accepted connections get TCP_NODELAY.
        listener = socket.socket(fileno=os.dup(self._sock.fileno()))
        try:
            await self._server.serve(sockets=[listener])
        finally:
            listener.close()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Abort open connections first: an idle TLS keep-alive connection (every client pool has
        one) otherwise holds uvicorn's graceful shutdown for its full timeout, waiting for a
        close_notify the client never sends."""
        server, loop = self._server, self.loop
        if server is not None and loop is not None and not loop.is_closed():

            def abort_connections() -> None:
                server.should_exit = True
                for connection in list(server.server_state.connections):
                    transport = getattr(connection, "transport", None)
                    if transport is not None:
                        transport.abort()

            with contextlib.suppress(RuntimeError):  # the loop just closed: nothing left to abort
                loop.call_soon_threadsafe(abort_connections)
        super().stop(timeout)


class Cluster:
    """One emulated cluster: its API endpoint, credentials and simulated node behaviour."""

    def __init__(
        self,
        emulator: KubeEmulator,
        name: str,
        store: ClusterStore,
        kubelet: Kubelet,
        controllers: Controllers,
    ) -> None:
        self._emulator = emulator
        self.name = name
        self._store = store
        self._kubelet = kubelet
        self._controllers = controllers
        self.token = secrets.token_urlsafe(24)
        self.read_only_token = secrets.token_urlsafe(24)
        self.endpoint = ClusterEndpoint(name, store, {self.token: "admin", self.read_only_token: "read-only"})

    @property
    def server(self) -> str:
        """The ``server:`` URL of this cluster (the path prefix selects it)."""
        return f"{self._emulator.url}/clusters/{self.name}"

    @property
    def behaviour(self) -> KubeletBehaviour:
        return self._kubelet.behaviour

    @property
    def stats(self) -> Stats:
        """Work counters of the store (objects touched, watch offers ...), for cost assertions."""
        return self._store.stats

    def set_stages(self, **durations: float) -> PodStages:
        """Change pod stage durations (seconds of the cluster clock) for stages scheduled from now on."""
        return self._kubelet.set_stages(**durations)

    def inject_image_pull_failure(self, rule: ImageRule | None) -> None:
        """Images for which ``rule(image)`` is true fail to pull (``ErrImagePull``/``ImagePullBackOff``).

        ``None`` restores the default rule (tag ``does-not-exist``, or a registry outside
        ``behaviour.known_registries`` when that is set).
        """
        with self._store.lock:
            self._kubelet.behaviour.image_pull_fails = rule

    def inject_crash(self, rule: CrashRule | None) -> None:
        """Containers for which ``rule(pod, container)`` is true crash (``CrashLoopBackOff``)."""
        with self._store.lock:
            self._kubelet.behaviour.crashes = rule

    def set_known_registries(self, registries: set[str] | None) -> None:
        """Only images from these registries pull (None: any registry)."""
        with self._store.lock:
            self._kubelet.behaviour.known_registries = frozenset(registries) if registries is not None else None

    def kubeconfig(self, path: Path, *, read_only: bool = False) -> Path:
        return self._emulator.kubeconfig(self.name, path, read_only=read_only)

    def objects(self) -> list[dict[str, Any]]:
        """Every object in the cluster (for evidence bundles), as plain JSON dicts."""
        return [clone(obj) for obj in self._store.objects()]

    def pending_timers(self) -> int:
        """Stage and controller timers still waiting on the clock (diagnostics)."""
        return len(self._store._timers)

    def open_watches(self) -> int:
        """Watches currently registered (lets a test wait until a client is listening)."""
        return self._store.watcher_count()


class KubeEmulator:
    """Serves the Kubernetes API of any number of clusters from one loopback port."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        bookmark_interval: float = 30.0,
        history_window: int = 10_000,
        record_events: bool = True,
        behaviour: Callable[[], KubeletBehaviour] | None = None,
    ) -> None:
        self.clock: Clock = clock or WallClock()
        self.history_window = history_window
        self.record_events = record_events
        self._behaviour = behaviour or KubeletBehaviour
        self._clusters: dict[str, Cluster] = {}
        self._lock = threading.Lock()
        self.api = KubeApi(self._endpoint, bookmark_interval=bookmark_interval, host_label=self._host_label)
        self._server: ServerThread | None = None
        self._tls: TLSMaterial | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> KubeEmulator:
        if self._server is None:
            self._tls = self._tls or generate()
            self._server = _TLSServerThread(self.api.app, "kube-emulator", self._tls.server_context()).start()
        return self

    @property
    def ca_pem(self) -> bytes:
        """The CA that signed the serving certificate (also embedded in every kubeconfig)."""
        if self._tls is None:
            raise KubeEmulatorError("the Kubernetes emulator is not started")
        return self._tls.ca_pem

    def stop(self) -> None:
        with self._lock:
            clusters = list(self._clusters.values())
            self._clusters.clear()
        for cluster in clusters:
            cluster._store.close()
        self.api.close_streams()
        deadline = time.monotonic() + 2.0
        while self.api.active_streams and time.monotonic() < deadline:
            time.sleep(0.005)  # let open watches write their final chunk: clients see a clean end
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise KubeEmulatorError("the Kubernetes emulator is not started")
        return self._server.url

    def _host_label(self) -> str:
        return f"127.0.0.1:{self._server.port}" if self._server is not None else "127.0.0.1"

    def _endpoint(self, name: str) -> ClusterEndpoint | None:
        cluster = self._clusters.get(name)
        return cluster.endpoint if cluster is not None else None

    # ------------------------------------------------------------------ clusters

    def add_cluster(
        self,
        name: str,
        *,
        behaviour: KubeletBehaviour | None = None,
        seed: int | None = None,
        history_window: int | None = None,
    ) -> Cluster:
        """A new, empty cluster (default namespaces, one node) served under ``/clusters/{name}``.

        ``seed`` fixes generated names and uids (default: derived from the name), so the same
        scenario produces the same objects; ``history_window`` bounds the watch history (events
        older than that answer 410 Expired).
        """
        if not _CLUSTER_NAME.match(name):
            raise KubeEmulatorError(f"invalid cluster name {name!r}: must be a DNS label")
        with self._lock:
            if name in self._clusters:
                raise KubeEmulatorError(f"cluster {name!r} already exists")
            store = ClusterStore(
                name,
                self.clock,
                history_window=history_window or self.history_window,
                seed=seed,
                record_events=self.record_events,
            )
            controllers = Controllers(store)
            kubelet = Kubelet(store, behaviour or self._behaviour())
            cluster = Cluster(self, name, store, kubelet, controllers)
            self._clusters[name] = cluster
            return cluster

    def remove_cluster(self, name: str) -> None:
        with self._lock:
            cluster = self._clusters.pop(name, None)
        if cluster is None:
            raise KubeEmulatorError(f"no cluster {name!r}")
        cluster._store.close()

    def cluster(self, name: str) -> Cluster:
        try:
            return self._clusters[name]
        except KeyError:
            raise KubeEmulatorError(f"no cluster {name!r}") from None

    @property
    def clusters(self) -> dict[str, Cluster]:
        return dict(self._clusters)

    def kubeconfig(self, cluster: str, path: Path, *, read_only: bool = False) -> Path:
        """Write a kubeconfig for ``cluster`` (admin, or read-only for steps) and return its path."""
        config = self.kubeconfig_dict(cluster, read_only=read_only)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: kubectl and the client read it, and it is ~50x cheaper to write than PyYAML
        # (kubeconfigs are rewritten for every host cluster at every scenario reset).
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def kubeconfig_dict(self, cluster: str, *, read_only: bool = False) -> dict[str, Any]:
        """A kubeconfig for ``cluster`` as a document (e.g. for a vcluster's ``vc-*`` Secret)."""
        target = self.cluster(cluster)
        user = f"{cluster}-{'read-only' if read_only else 'admin'}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {
                        "server": target.server,
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": target.read_only_token if read_only else target.token}}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user, "namespace": "default"}}],
            "current-context": cluster,
        }
        return config

    def component(self) -> Component:
        """This emulator's row in the realism ledger (DESIGN.md §5): emulated, never real."""
        return Component(
            name="kubernetes-api",
            real=False,
            implementation="catalyst-sim kube emulator",
            version=VERSION,
            url=self.url if self._server is not None else "",
        )
