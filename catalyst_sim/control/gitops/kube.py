"""The vcluster's Kubernetes API as the engine reaches it: the official ``kubernetes`` client.

Flux only ever talks to its cluster through the API server, so the engine does too (DESIGN.md §1:
the wire protocol is the port) — it never touches an emulator in-process. Calls are blocking; the
reconcilers run them on the engine's executor. Objects travel as plain JSON dicts because Flux works
on unstructured objects of any kind, including CRDs registered after start-up.

Discovery is per group/version and cached; a miss re-reads that group/version once, so kinds whose
CRD was created after the first lookup (an App that ships its own CRD, or ESO's) are found without
restarting. The dynamic client's discovery was not used: it writes a cache file into the shared
temp directory keyed only by host, which two runs in parallel would share.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes.client import ApiClient

from catalyst_sim.control.kubeclient import api_client


class KubeError(Exception):
    """An API call that failed: the Status object's code, reason and message (code 0: no answer)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class UnknownKind(KubeError):
    """The cluster does not serve this apiVersion/kind (kubectl's "no matches for kind")."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"')
        self.api_version = api_version
        self.kind = kind


@dataclass(frozen=True)
class ResourceType:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def path(self, name: str | None = None, namespace: str | None = None) -> str:
        base = f"/api/{self.api_version}" if not self.group else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base = f"{base}/namespaces/{namespace}"
        base = f"{base}/{self.plural}"
        return f"{base}/{name}" if name else base


class Kube:
    """Blocking CRUD, server-side apply and status writes against one cluster."""

    def __init__(self, kubeconfig: Path, *, timeout: float = 30.0) -> None:
        self._api = api_client(kubeconfig)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._types: dict[str, dict[str, ResourceType]] = {}  # apiVersion -> kind -> type

    def close(self) -> None:
        self._api.close()

    # ------------------------------------------------------------------ plumbing

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        api: ApiClient = self._api
        serialized = api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = api.call_api(*serialized, _request_timeout=self._timeout)
            data = response.read()
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(0, "ServiceUnavailable", f"the API server did not answer: {exc}") from None
        if not 200 <= response.status <= 299:
            raise _error(response.status, data)
        return json.loads(data) if data else None

    # ------------------------------------------------------------------ discovery

    def resource(self, api_version: str, kind: str) -> ResourceType:
        """The served type of ``apiVersion``/``kind``; :class:`UnknownKind` if the cluster has none."""
        with self._lock:
            found = self._types.get(api_version, {}).get(kind)
            if found is not None:
                return found
            self._types[api_version] = self._discover(api_version)
            found = self._types[api_version].get(kind)
        if found is None:
            raise UnknownKind(api_version, kind)
        return found

    def forget_discovery(self) -> None:
        with self._lock:
            self._types.clear()

    def _discover(self, api_version: str) -> dict[str, ResourceType]:
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            listing = self.request("GET", path)
        except KubeError as exc:
            if exc.status == 404:
                return {}
            raise
        types: dict[str, ResourceType] = {}
        for item in (listing or {}).get("resources") or []:
            if "/" in item.get("name", ""):
                continue  # subresources (status, scale, ...)
            types[item["kind"]] = ResourceType(api_version, item["kind"], item["name"], bool(item.get("namespaced")))
        return types

    # ------------------------------------------------------------------ objects

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        rt = self.resource(api_version, kind)
        try:
            return self.request("GET", rt.path(name, namespace))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        rt = self.resource(api_version, kind)
        query = [("labelSelector", label_selector)] if label_selector else []
        listing = self.request("GET", rt.path(None, namespace), query=query)
        return list((listing or {}).get("items") or [])

    def apply(self, obj: dict[str, Any], *, field_manager: str, rt: ResourceType | None = None) -> dict[str, Any]:
        """Server-side apply (``force``: the engine owns what it applies, like Flux)."""
        rt = rt or self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        return self.request(
            "PATCH",
            rt.path(meta["name"], meta.get("namespace")),
            body=json.dumps(obj),
            query=[("fieldManager", field_manager), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create ``obj``; ``None`` if it already exists (bootstrap objects are create-once)."""
        rt = self.resource(obj["apiVersion"], obj["kind"])
        try:
            return self.request("POST", rt.path(None, obj["metadata"].get("namespace")), body=obj)
        except KubeError as exc:
            if exc.status == 409:
                return None
            raise

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        rt = self.resource(api_version, kind)
        try:
            self.request(
                "DELETE", rt.path(name, namespace), body={"kind": "DeleteOptions", "apiVersion": "v1",
                                                          "propagationPolicy": "Background"}
            )
            return True
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch ``status`` through the status subresource (``None`` if the object is gone)."""
        rt = self.resource(api_version, kind)
        try:
            return self.request(
                "PATCH",
                f"{rt.path(name, namespace)}/status",
                body={"status": status},
                content_type="application/merge-patch+json",
            )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise


def _error(status: int, data: bytes) -> KubeError:
    try:
        body = json.loads(data)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return KubeError(status, str(body.get("reason") or "Unknown"), str(body.get("message") or data[:500]))
