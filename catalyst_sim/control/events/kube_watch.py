"""Watch a vcluster's workloads and publish each change to ``ws.<env>.k8s.<kind>.<ns>.<name>``.

The projector derives ready/desired pods from Deployments and StatefulSets (R-CARD-02 Running and
Degraded), so those are the kinds watched; every change of them in the vcluster is published.
A plain Kubernetes watch over HTTP (the kubeconfig the vcluster publishes), as an informer does:
list-then-watch from ``resourceVersion``, resume from the last version seen (bookmarks included),
and relist after ``410 Gone``. Runs on the spine's event loop; stopping cancels the streams.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

if TYPE_CHECKING:
    from catalyst_sim.control.events.wiring import EventSpine

__all__ = ["WATCHED_KINDS", "VclusterWatch", "kube_target"]

log = logging.getLogger(__name__)

#: (kind, API path prefix, plural) of the workloads whose replica counts feed the cards.
WATCHED_KINDS: tuple[tuple[str, str, str], ...] = (
    ("Deployment", "/apis/apps/v1", "deployments"),
    ("StatefulSet", "/apis/apps/v1", "statefulsets"),
)
RETRY_SECONDS = 0.2


def kube_target(kubeconfig: Path | dict[str, Any]) -> tuple[str, str, ssl.SSLContext | bool]:
    """(server URL, bearer token, TLS verification) of a kubeconfig's current context."""
    doc = kubeconfig if isinstance(kubeconfig, dict) else yaml.safe_load(Path(kubeconfig).read_text())
    context_name = doc.get("current-context")
    context = next((c["context"] for c in doc.get("contexts", []) if c.get("name") == context_name), None)
    if context is None:
        raise ValueError(f"kubeconfig: current-context {context_name!r} is not in contexts")
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in doc["users"] if u["name"] == context["user"])
    verify: ssl.SSLContext | bool = True
    if cluster.get("certificate-authority-data"):
        verify = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("insecure-skip-tls-verify"):
        verify = False
    return str(cluster["server"]).rstrip("/"), str(user.get("token", "")), verify


class VclusterWatch:
    """One watch stream per watched kind of one vcluster, feeding ``spine.submit_k8s``."""

    def __init__(self, kubeconfig: Path | dict[str, Any], *, environment: str, vcluster: str, spine: EventSpine,
                 instance: str) -> None:
        self.server, token, verify = kube_target(kubeconfig)
        self.environment = environment
        self.vcluster = vcluster
        self.spine = spine
        self.instance = instance
        self._client = httpx.AsyncClient(verify=verify, headers={"Authorization": f"Bearer {token}"},
                                         timeout=httpx.Timeout(10.0, read=None))
        self._tasks: list[asyncio.Task[None]] = []
        self.seen = 0  # events received, for diagnostics

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._watch(kind, prefix, plural))
                       for kind, prefix, plural in WATCHED_KINDS]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self._client.aclose()

    async def _watch(self, kind: str, prefix: str, plural: str) -> None:
        version = ""
        while True:
            params = {"watch": "1", "allowWatchBookmarks": "true"}
            if version:
                params["resourceVersion"] = version
            try:
                async with self._client.stream("GET", f"{self.server}{prefix}/{plural}", params=params) as response:
                    if response.status_code == 410:
                        version = ""
                        continue
                    if response.status_code != 200:
                        raise httpx.HTTPStatusError(f"watch {plural}: HTTP {response.status_code}",
                                                    request=response.request, response=response)
                    async for line in response.aiter_lines():
                        if line.strip():
                            version = self._handle(kind, json.loads(line), version)
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.debug("watch %s on %s: %r; resuming", plural, self.vcluster, exc)
                await asyncio.sleep(RETRY_SECONDS)

    def _handle(self, kind: str, event: dict[str, Any], version: str) -> str:
        event_type = event.get("type")
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        if event_type == "ERROR":
            if obj.get("code") == 410:
                return ""  # too old: relist
            raise ValueError(f"watch error: {obj.get('message')}")
        if event_type in ("ADDED", "MODIFIED", "DELETED"):
            self.seen += 1
            self.spine.submit_k8s(self.environment, kind, meta.get("namespace"), str(meta.get("name", "")), obj,
                                  str(event_type), vcluster=self.vcluster, instance=self.instance)
        return str(meta.get("resourceVersion") or version)
