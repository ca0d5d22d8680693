"""A small synchronous Kubernetes API client over httpx, from a kubeconfig (the wire protocol only).

The cutover patches a handful of object kinds, some of them custom resources; a plain REST client
with merge patches keeps that explicit and cheap (one keep-alive connection per cluster).
"""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import httpx

MERGE_PATCH = "application/merge-patch+json"

# kind -> (group/version, plural, namespaced)
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("v1", "namespaces", False),
    "ConfigMap": ("v1", "configmaps", True),
    "Secret": ("v1", "secrets", True),
    "Pod": ("v1", "pods", True),
    "Event": ("v1", "events", True),
    "Node": ("v1", "nodes", False),
    "ServiceAccount": ("v1", "serviceaccounts", True),
    "Deployment": ("apps/v1", "deployments", True),
    "DaemonSet": ("apps/v1", "daemonsets", True),
    "Job": ("batch/v1", "jobs", True),
    "Role": ("rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings", True),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies", True),
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "GitRepository": ("source.toolkit.fluxcd.io/v1", "gitrepositories", True),
    "HelmRepository": ("source.toolkit.fluxcd.io/v1", "helmrepositories", True),
    "Kustomization": ("kustomize.toolkit.fluxcd.io/v1", "kustomizations", True),
    "HelmRelease": ("helm.toolkit.fluxcd.io/v2", "helmreleases", True),
    "Provider": ("pkg.crossplane.io/v1", "providers", False),
}


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class KubeClient:
    def __init__(self, kubeconfig: Path) -> None:
        config = json.loads(Path(kubeconfig).read_text())
        cluster = config["clusters"][0]["cluster"]
        token = config["users"][0]["user"]["token"]
        context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.server = cluster["server"].rstrip("/")
        self._http = httpx.Client(verify=context, timeout=15, headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def path(self, kind: str, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        version, plural, namespaced = KINDS[kind]
        base = f"/api/{version}" if "/" not in version else f"/apis/{version}"
        ns = f"/namespaces/{namespace}" if namespaced and namespace else ""
        return f"{self.server}{base}{ns}/{plural}" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    def _send(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self._http.request(method, url, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise KubeError(response.status_code, f"{method} {url}: {response.status_code} {message}")
        return response.json() if response.content else None

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self._send("GET", self.path(kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str | None = None, selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        return list(self._send("GET", self.path(kind, namespace), params=params).get("items") or [])

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self._send("POST", self.path(obj["kind"], meta.get("namespace")), json=obj)

    def ensure(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create, or merge-patch the spec/data of what exists (idempotent apply)."""
        meta = obj["metadata"]
        current = self.get(obj["kind"], meta.get("namespace"), meta["name"])
        if current is None:
            return self.create(obj)
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
        return self.patch(obj["kind"], meta.get("namespace"), meta["name"], body)

    def patch(self, kind: str, namespace: str | None, name: str, body: dict[str, Any], sub: str = "") -> dict[str, Any]:
        return self._send("PATCH", self.path(kind, namespace, name, sub), content=json.dumps(body),
                          headers={"Content-Type": MERGE_PATCH})

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        try:
            self._send("DELETE", self.path(kind, namespace, name))
            return True
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
