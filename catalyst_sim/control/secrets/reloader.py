"""Reloader: roll the workloads that consume a Secret when its data hash changes (R-SEC-01, R-SEC-07).

Like Stakater Reloader run with ``--auto-reload-all`` (Catalyst wants every consumer of a rotated
credential restarted, R-SEC-07: "a credential update MUST be followed by a rollout restart"), except
for workloads annotated ``reloader.stakater.com/auto: "false"``. A Deployment or StatefulSet (the kinds
Reloader rolls that the Sovereign's Blueprints use) consumes a Secret through
``env[].valueFrom.secretKeyRef``, ``envFrom[].secretRef`` or a ``secret`` volume.

The roll is the annotations strategy: a merge patch of the pod template's annotation
:data:`HASHES_ANNOTATION` (a JSON map Secret name → SHA-1 of its data), which changes the template hash
so the workload's controller performs an ordinary rolling update. Flux's server-side apply never sent
that annotation, so its next reconcile leaves it alone. A Secret seen for the first time only records
its hash (Reloader does not restart on create); a later different hash rolls.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from catalyst_sim.control.gitops.kube import Kube

HASHES_ANNOTATION = "reloader.catalyst.openova.io/secret-hashes"
ROLLED_KINDS = ("Deployment", "StatefulSet")
AUTO_ANNOTATION = "reloader.stakater.com/auto"
FIELD_MANAGER = "reloader"


def data_hash(secret: dict[str, Any]) -> str:
    data = secret.get("data") or {}
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode(), usedforsecurity=False).hexdigest()


def consumes(deployment: dict[str, Any], secret: str) -> bool:
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for volume in pod.get("volumes") or []:
        if (volume.get("secret") or {}).get("secretName") == secret:
            return True
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        for env in container.get("env") or []:
            if ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") == secret:
                return True
        for source in container.get("envFrom") or []:
            if (source.get("secretRef") or {}).get("name") == secret:
                return True
    return False


def recorded_hashes(deployment: dict[str, Any]) -> dict[str, str]:
    annotations = ((deployment.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
    try:
        found = json.loads(annotations.get(HASHES_ANNOTATION) or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


class Reloader:
    """The Reloader of one vcluster: blocking; called from the secrets controller's executor."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.seen: dict[tuple[str, str], str] = {}  # (namespace, secret) -> last data hash
        self.rolls = 0

    def secret_changed(self, namespace: str, name: str) -> list[str]:
        """React to the current state of Secret ``namespace/name``; the workloads rolled (``Kind/name``)."""
        secret = self.kube.get("v1", "Secret", name, namespace)
        if secret is None:
            self.seen.pop((namespace, name), None)
            return []
        digest = data_hash(secret)
        previous = self.seen.get((namespace, name))
        self.seen[(namespace, name)] = digest
        rolled: list[str] = []
        for kind in ROLLED_KINDS:
            for workload in self.kube.list("apps/v1", kind, namespace):
                meta = workload.get("metadata") or {}
                if (meta.get("annotations") or {}).get(AUTO_ANNOTATION) == "false" or not consumes(workload, name):
                    continue
                hashes = recorded_hashes(workload)
                known = hashes.get(name, previous)
                if known is None or known == digest:  # first sight or unchanged: pods already hold this data
                    continue
                self._record(kind, workload, {**hashes, name: digest})
                rolled.append(f"{kind}/{meta.get('name')}")
                self.rolls += 1
        return rolled

    def _record(self, kind: str, workload: dict[str, Any], hashes: dict[str, str]) -> None:
        meta = workload["metadata"]
        patch = {"spec": {"template": {"metadata": {"annotations": {
            HASHES_ANNOTATION: json.dumps(hashes, sort_keys=True, separators=(",", ":"))}}}}}
        rt = self.kube.resource("apps/v1", kind)
        self.kube.request("PATCH", rt.path(meta["name"], meta.get("namespace")), body=patch,
                          query=[("fieldManager", FIELD_MANAGER)], content_type="application/merge-patch+json")
