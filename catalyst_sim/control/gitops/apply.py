"""Apply, inventory and prune — kustomize-controller's ``ssa`` step.

Objects are applied with server-side apply as field manager ``kustomize-controller`` and forced,
so a manual edit of a field the App repo sets is overwritten at the next reconcile (drift
correction), while fields nobody in Git sets (e.g. ``status``, defaults) are left alone. Order
follows Flux: Namespaces and CRDs first (later objects live in them), then the rest by kind, the
way kustomize sorts a build.

The inventory is Flux's: one entry per applied object, ``id = <namespace>_<name>_<group>_<kind>``
and ``v`` its version. Pruning deletes what the previous inventory had and this build does not,
unless the object opted out (``kustomize.toolkit.fluxcd.io/prune: disabled``) or has since been
taken over by another Kustomization.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from catalyst_sim.control.gitops.crds import FIELD_MANAGER
from catalyst_sim.control.gitops.kube import Kube, KubeError, ResourceType
from catalyst_sim.control.gitops.render import FLUX_NAME_LABEL, BuildError, object_ref

PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"
_KIND_ORDER = (
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount", "PodSecurityPolicy",
    "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service",
    "LimitRange", "PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment", "StatefulSet",
    "CronJob", "PodDisruptionBudget",
)
_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


@dataclass(frozen=True)
class Entry:
    """One inventory entry (``status.inventory.entries[]``)."""

    namespace: str
    name: str
    group: str
    kind: str
    version: str

    @property
    def id(self) -> str:
        return f"{self.namespace}_{self.name}_{self.group}_{self.kind}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def as_status(self) -> dict[str, str]:
        return {"id": self.id, "v": self.version}

    @classmethod
    def parse(cls, item: dict[str, Any]) -> Entry | None:
        parts = str(item.get("id", "")).split("_")
        if len(parts) != 4 or not parts[1] or not parts[3]:
            return None
        return cls(parts[0], parts[1], parts[2], parts[3], str(item.get("v", "")))


@dataclass
class ApplyResult:
    entries: list[Entry]
    created: list[str] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    def inventory(self) -> dict[str, Any]:
        return {"entries": [e.as_status() for e in sorted(self.entries, key=lambda e: e.id)]}

    def summary(self) -> str:
        parts = [f"{ref} created" for ref in self.created] + [f"{ref} deleted" for ref in self.pruned]
        return "\n".join(parts)


class ApplyError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _rank(kind: str) -> int:
    if kind in _KIND_ORDER:
        return _KIND_ORDER.index(kind)
    return len(_KIND_ORDER) + (1 + _LAST.index(kind) if kind in _LAST else 0)


def resolve(kube: Kube, objects: Iterable[dict[str, Any]], target_namespace: str
            ) -> list[tuple[dict[str, Any], ResourceType]]:
    """Pair every object with its served type and put namespaced ones into ``target_namespace``.

    A kind the vcluster does not serve is a build error (Flux's dry-run fails the same way), found
    before anything is applied so a revision is never half-applied for that reason.
    """
    resolved: list[tuple[dict[str, Any], ResourceType]] = []
    for obj in objects:
        try:
            rt = kube.resource(obj["apiVersion"], obj["kind"])
        except KubeError as exc:
            raise BuildError(f"{object_ref(obj)} dry-run failed: {exc.message}") from None
        meta = obj["metadata"]
        if rt.namespaced:
            meta["namespace"] = target_namespace
        else:
            meta.pop("namespace", None)
        resolved.append((obj, rt))
    resolved.sort(key=lambda pair: _rank(pair[0]["kind"]))
    return resolved


def entry_of(obj: dict[str, Any], rt: ResourceType) -> Entry:
    meta = obj["metadata"]
    return Entry(meta.get("namespace") or "", meta["name"], rt.group, rt.kind, rt.version)


def apply_all(
    kube: Kube,
    resolved: list[tuple[dict[str, Any], ResourceType]],
    *,
    previous: Iterable[Entry],
    kustomization: str,
    prune: bool,
) -> ApplyResult:
    """Apply every object in order, then prune what the previous inventory had and this one lacks."""
    before = {e.id for e in previous}
    result = ApplyResult(entries=[])
    for obj, rt in resolved:
        entry = entry_of(obj, rt)
        try:
            kube.apply(obj, field_manager=FIELD_MANAGER, rt=rt)
        except KubeError as exc:
            raise ApplyError(f"{entry.ref} apply failed: {exc.message}") from None
        (result.configured if entry.id in before else result.created).append(entry.ref)
        result.entries.append(entry)
    if prune:
        keep = {e.id for e in result.entries}
        stale = [e for e in previous if e.id not in keep]
        for entry in reversed(sorted(stale, key=lambda e: _rank(e.kind))):
            if delete_owned(kube, entry, kustomization):
                result.pruned.append(entry.ref)
    return result


def delete_owned(kube: Kube, entry: Entry, kustomization: str) -> bool:
    """Delete one inventory object unless it opted out of pruning or another owner took it over."""
    try:
        live = kube.get(entry.api_version, entry.kind, entry.name, entry.namespace or None)
    except KubeError:
        return False  # its kind is no longer served: nothing left to delete
    if live is None:
        return False
    meta = live.get("metadata") or {}
    if (meta.get("annotations") or {}).get(PRUNE_ANNOTATION) == "disabled":
        return False
    owner = (meta.get("labels") or {}).get(FLUX_NAME_LABEL)
    if owner is not None and owner != kustomization:
        return False
    try:
        return kube.delete(entry.api_version, entry.kind, entry.name, entry.namespace or None)
    except KubeError as exc:
        raise ApplyError(f"{entry.ref} prune failed: {exc.message}") from None


def inventory_of(status: dict[str, Any] | None) -> list[Entry]:
    items = (((status or {}).get("inventory") or {}).get("entries")) or []
    return [e for e in (Entry.parse(i) for i in items if isinstance(i, dict)) if e is not None]
