"""The resource types one emulated cluster serves: built-ins plus whatever CRDs register.

Discovery, routing, scope, subresources, selectable fields and generation tracking all read a
:class:`ResourceType`, so a CRD created at runtime becomes as servable and discoverable as a
built-in the moment its ``CustomResourceDefinition`` is stored. Storage is keyed by
:attr:`ResourceType.gr` (group, plural): the versions of one CRD share one set of objects.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .selectors import FieldGetter, dig, field_getters

GR = tuple[str, str]
STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ScalePaths:
    """Where ``/scale`` reads and writes replicas (JSON paths without the leading dot)."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    label_selector: str | None = None  # a string path (CRDs); None: render spec.selector


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry of a CRD, served in Table responses."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    scale: ScalePaths | None = None
    verbs: tuple[str, ...] = STANDARD_VERBS
    tracks_generation: bool = False
    return_deleted_object: bool = False
    strategic_merge: bool = True
    selectable_fields: tuple[str, ...] = ()
    extra_subresources: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    crd: str | None = None
    storage_version: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def gr(self) -> GR:
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def field_getters(self) -> dict[str, FieldGetter]:
        return _field_getters(self)

    def discovery(self) -> list[dict[str, Any]]:
        """The APIResource entries for this type and its subresources, as ``/api/v1`` lists them."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": list(SUBRESOURCE_VERBS),
                }
            )
        if self.scale is not None:
            entries.append(
                {
                    "name": f"{self.plural}/scale",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": list(SUBRESOURCE_VERBS),
                }
            )
        for sub in self.extra_subresources:
            verbs = ["get"] if sub == "log" else ["update"]
            kind = self.kind if sub != "log" else "Pod"
            entries.append(
                {
                    "name": f"{self.plural}/{sub}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": kind,
                    "verbs": verbs,
                }
            )
        return entries


_GETTER_CACHE: dict[ResourceType, dict[str, FieldGetter]] = {}
_EXTRA_FIELDS: dict[GR, list[str]] = {
    ("", "pods"): [
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ],
    ("", "events"): [
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "type",
    ],
    ("", "secrets"): ["type"],
    ("", "namespaces"): ["status.phase"],
    ("", "nodes"): ["spec.unschedulable"],
    ("apps", "replicasets"): ["status.replicas"],
    ("batch", "jobs"): ["status.successful"],
}


def _field_getters(rt: ResourceType) -> dict[str, FieldGetter]:
    cached = _GETTER_CACHE.get(rt)
    if cached is not None:
        return cached
    paths = [
        "metadata.name",
        "metadata.namespace",
        *_EXTRA_FIELDS.get(rt.gr, []),
        *(p.lstrip(".") for p in rt.selectable_fields),
    ]
    getters = field_getters(paths)
    if rt.gr == ("", "events"):
        getters["source"] = lambda obj: dig(obj, "source.component") or dig(obj, "reportingComponent")
    if rt.gr == ("batch", "jobs"):
        getters["status.successful"] = lambda obj: dig(obj, "status.succeeded") or "0"
    _GETTER_CACHE[rt] = getters
    return getters


def _builtin(group: str, version: str, kind: str, plural: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        storage_version=version,
        **kw,
    )


_WORKLOAD_SCALE = ScalePaths()
BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _builtin(
        "",
        "v1",
        "Namespace",
        "namespaces",
        namespaced=False,
        short_names=("ns",),
        status=True,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        extra_subresources=("finalize",),
    ),
    _builtin("", "v1", "Node", "nodes", namespaced=False, short_names=("no",), status=True),
    _builtin("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _builtin("", "v1", "Secret", "secrets"),
    _builtin("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _builtin(
        "",
        "v1",
        "Service",
        "services",
        short_names=("svc",),
        categories=("all",),
        status=True,
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
    ),
    _builtin(
        "",
        "v1",
        "Pod",
        "pods",
        short_names=("po",),
        categories=("all",),
        status=True,
        tracks_generation=True,
        return_deleted_object=True,
        extra_subresources=("log",),
    ),
    _builtin("", "v1", "Event", "events", short_names=("ev",)),
    _builtin(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short_names=("deploy",),
        categories=("all",),
        status=True,
        scale=_WORKLOAD_SCALE,
        tracks_generation=True,
    ),
    _builtin(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short_names=("rs",),
        categories=("all",),
        status=True,
        scale=_WORKLOAD_SCALE,
        tracks_generation=True,
    ),
    _builtin(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short_names=("sts",),
        categories=("all",),
        status=True,
        scale=_WORKLOAD_SCALE,
        tracks_generation=True,
    ),
    _builtin("batch", "v1", "Job", "jobs", categories=("all",), status=True, tracks_generation=True),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        status=True,
        tracks_generation=True,
    ),
    # Stored and served, with no controller behind them: what a control plane writes for tenants
    # (RBAC, network policy, quotas, leader-election leases). Quotas are not enforced and claims
    # stay Pending, as on a cluster without a quota controller or a storage provisioner.
    _builtin("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",), status=True),
    _builtin("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",), status=True),
    _builtin("", "v1", "LimitRange", "limitranges", short_names=("limits",)),
    _builtin("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _builtin("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",)),
    _builtin("networking.k8s.io", "v1", "Ingress", "ingresses", short_names=("ing",), status=True),
    _builtin("coordination.k8s.io", "v1", "Lease", "leases"),
)


def crd_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served versions of a CRD as resource types (all sharing the storage version's objects)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    plural = names.get("plural", "")
    versions = spec.get("versions") or []
    storage = next((v["name"] for v in versions if v.get("storage")), versions[0]["name"] if versions else "")
    out = []
    for version in versions:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        scale = subresources.get("scale")
        columns = tuple(
            PrinterColumn(
                name=c.get("name", ""),
                type=c.get("type", "string"),
                json_path=c.get("jsonPath", ""),
                description=c.get("description", ""),
                priority=int(c.get("priority", 0)),
                format=c.get("format", ""),
            )
            for c in version.get("additionalPrinterColumns") or []
        )
        out.append(
            ResourceType(
                group=group,
                version=version["name"],
                kind=names.get("kind", ""),
                plural=plural,
                singular=names.get("singular") or names.get("kind", "").lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status="status" in subresources,
                scale=ScalePaths(
                    spec_replicas=scale.get("specReplicasPath", ".spec.replicas").lstrip("."),
                    status_replicas=scale.get("statusReplicasPath", ".status.replicas").lstrip("."),
                    label_selector=(scale.get("labelSelectorPath") or "").lstrip(".") or None,
                )
                if scale is not None
                else None,
                tracks_generation=True,
                return_deleted_object=True,
                strategic_merge=False,
                selectable_fields=tuple(f.get("jsonPath", "") for f in version.get("selectableFields") or []),
                printer_columns=columns,
                crd=(crd.get("metadata") or {}).get("name"),
                storage_version=storage,
            )
        )
    return out


@dataclass
class ResourceRegistry:
    """Per-cluster lookup tables, rebuilt incrementally when CRDs come and go."""

    _by_gvr: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_gr: dict[GR, list[ResourceType]] = field(default_factory=dict)
    _by_gvk: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _crds: dict[str, list[ResourceType]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def with_builtins(cls) -> ResourceRegistry:
        registry = cls()
        for rt in BUILTIN_TYPES:
            registry._add(rt)
        return registry

    def _add(self, rt: ResourceType) -> None:
        self._by_gvr[(rt.group, rt.version, rt.plural)] = rt
        self._by_gr.setdefault(rt.gr, []).append(rt)
        self._by_gvk[(rt.group, rt.version, rt.kind)] = rt

    def _remove(self, rt: ResourceType) -> None:
        self._by_gvr.pop((rt.group, rt.version, rt.plural), None)
        self._by_gvk.pop((rt.group, rt.version, rt.kind), None)
        versions = [v for v in self._by_gr.get(rt.gr, []) if v != rt]
        if versions:
            self._by_gr[rt.gr] = versions
        else:
            self._by_gr.pop(rt.gr, None)

    def register_crd(self, crd: Mapping[str, Any]) -> list[ResourceType]:
        name = (crd.get("metadata") or {}).get("name", "")
        with self._lock:
            for rt in self._crds.pop(name, []):
                self._remove(rt)
            types = crd_types(crd)
            for rt in types:
                self._add(rt)
            self._crds[name] = types
            return types

    def unregister_crd(self, name: str) -> list[ResourceType]:
        with self._lock:
            types = self._crds.pop(name, [])
            for rt in types:
                self._remove(rt)
            return types

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def require(self, group: str, version: str, plural: str) -> ResourceType:
        """A type that must exist (the built-ins controllers and the kubelet rely on)."""
        found = self._by_gvr.get((group, version, plural))
        if found is None:
            raise KeyError(f"{plural}.{group}/{version} is not registered")
        return found

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self._by_gvk.get((group, version, kind))

    def storage_type(self, gr: GR) -> ResourceType | None:
        """The version objects of ``gr`` are stored as (the CRD's storage version)."""
        versions = self._by_gr.get(gr)
        if not versions:
            return None
        return next((v for v in versions if v.version == v.storage_version), versions[0])

    def kind_for(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self._by_gvk.get((group, version, kind))

    def all_types(self) -> list[ResourceType]:
        with self._lock:
            return list(self._by_gvr.values())

    def storage_grs(self) -> list[GR]:
        with self._lock:
            return list(self._by_gr)

    def groups(self) -> list[tuple[str, list[str]]]:
        """(group, versions) in discovery order: built-in groups first, then CRD groups by name.

        A CRD's versions are ordered the way upstream sorts them (GA before beta before alpha,
        higher numbers first), so the preferred version is the first.
        """
        with self._lock:
            order: dict[str, list[str]] = {}
            for rt in self._by_gvr.values():
                versions = order.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
            builtin_groups = []
            for rt in BUILTIN_TYPES:
                if rt.group not in builtin_groups:
                    builtin_groups.append(rt.group)
            result = [(g, order[g]) for g in builtin_groups if g in order]
            result += [(g, sorted(order[g], key=version_priority)) for g in sorted(order) if g not in builtin_groups]
            return result

    def types_in(self, group: str, version: str) -> list[ResourceType]:
        with self._lock:
            return [rt for rt in self._by_gvr.values() if rt.group == group and rt.version == version]


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)
