"""The eight tethers of a freshly handed-over Sovereign (ADR-0002 §2.1, R-CUT-01) as cluster objects.

:func:`handed_over_objects` is what Phase 0/1 leaves in a Sovereign's cluster: Flux pointed at
github.com, k3s ``registries.yaml`` routing every registry through harbor.openova.io, the 38 OCI
HelmRepositories on ghcr.io with the ``ghcr-pull`` Secret, catalyst-api's upstream fallback,
Crossplane providers from xpkg.upbound.io, Catalyst images on ghcr.io and the cloud-init OS
mirrors; plus the dormant ``bp-self-sovereign-cutover`` (JobTemplate ConfigMaps, RBAC, status
ConfigMap and zero Jobs, R-CUT-03). :func:`tether_states` reads them back: which tethers remain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from catalyst_sim.backends.embedded.mothership import content

FLUX_NS, CATALYST_NS = "flux-system", "catalyst-system"
UPSTREAM_REPO = "https://github.com/openova-io/openova"
LOCAL_REPO = "http://gitea-http.gitea:3000/openova/openova"
MOTHERSHIP_HARBOR = "https://harbor.openova.io"
STATUS_CONFIGMAP = "self-sovereign-cutover-status"
JOB_NAMES = ("gitea-mirror", "harbor-projects", "harbor-prewarm", "registry-pivot", "flux-gitrepository-patch",
             "helmrepo-patches", "catalyst-api-env-patch", "egress-block-test")


@dataclass(frozen=True)
class Tether:
    number: int
    name: str
    phase: str
    pivoted_by: str  # the cutover Job that removes it ("" if none does)


TETHERS: tuple[Tether, ...] = (
    Tether(1, "Flux GitRepository url -> github.com/openova-io/openova", "P0", "flux-gitrepository-patch"),
    Tether(2, "containerd registries.yaml -> harbor.openova.io", "P0", "registry-pivot"),
    Tether(3, "OCI HelmRepositories -> oci://ghcr.io/openova-io", "P0", "helmrepo-patches"),
    Tether(4, "catalyst-api upstream repo fallback env", "P0", "catalyst-api-env-patch"),
    Tether(5, "flux-system/ghcr-pull Secret", "P0", "helmrepo-patches"),
    Tether(6, "Crossplane provider packages from xpkg.upbound.io", "P1", ""),
    Tether(7, "Catalyst images ghcr.io/openova-io/openova/*", "P0", "harbor-prewarm"),
    Tether(8, "OS package mirrors during cloud-init (apt, get.k3s.io)", "P2", ""),
)


def tether(number: int) -> Tether:
    return TETHERS[number - 1]


def registries_yaml(endpoint: str) -> str:
    """k3s ``registries.yaml``: every registry through ``endpoint``'s proxy-cache projects."""
    mirrors = {upstream: {"endpoint": [endpoint], "rewrite": {"^(.*)$": f"{project}/$1"}}
               for project, upstream in content.PROXY_PROJECTS.items()}
    return yaml.safe_dump({"mirrors": mirrors}, sort_keys=True)


def _crd(group: str, version: str, kind: str, plural: str, scope: str = "Namespaced") -> dict[str, Any]:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope,
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                     "versions": [{"name": version, "served": True, "storage": True, "subresources": {"status": {}},
                                   "schema": schema}]}}


def crds() -> list[dict[str, Any]]:
    return [_crd("source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories"),
            _crd("source.toolkit.fluxcd.io", "v1", "HelmRepository", "helmrepositories"),
            _crd("kustomize.toolkit.fluxcd.io", "v1", "Kustomization", "kustomizations"),
            _crd("helm.toolkit.fluxcd.io", "v2", "HelmRelease", "helmreleases"),
            _crd("pkg.crossplane.io", "v1", "Provider", "providers", scope="Cluster")]


def _meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/part-of": "catalyst", **labels}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def handed_over_objects() -> list[dict[str, Any]]:
    """Every object of the handed-over state, in creation order (namespaces first)."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        for ns in (FLUX_NS, CATALYST_NS, "crossplane-system", "gitea", "harbor")
    ]
    objects += [
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
         "metadata": _meta("flux-system", FLUX_NS),
         "spec": {"interval": "1m", "url": UPSTREAM_REPO, "ref": {"branch": "main"}}},
        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
         "metadata": _meta("flux-system", FLUX_NS),
         "spec": {"interval": "10m", "path": "./clusters/_template/bootstrap-kit", "prune": True,
                  "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("k3s-registries", "kube-system"),
         "data": {"registries.yaml": registries_yaml(MOTHERSHIP_HARBOR)}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": _meta("ghcr-pull", FLUX_NS),
         "type": "kubernetes.io/dockerconfigjson",
         "stringData": {".dockerconfigjson": json.dumps({"auths": {"ghcr.io": {"auth": "b3Blbm92YS1ib3Q6Z2hjcg=="}}})}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("os-package-mirrors", "kube-system"),
         "data": {"apt": "http://deb.debian.org/debian", "k3s-install": "https://get.k3s.io"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("catalyst-api", CATALYST_NS),
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "catalyst-api"}},
                  "template": {"metadata": {"labels": {"app": "catalyst-api"}},
                               "spec": {"containers": [{"name": "api", "image": content.BOOTSTRAP_KIT[17].image,
                                                        "env": [{"name": "CATALYST_UPSTREAM_FALLBACK",
                                                                 "value": UPSTREAM_REPO}]}]}}}},
    ]
    for entry in content.BOOTSTRAP_KIT:
        objects.append({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                        "metadata": _meta(entry.chart, FLUX_NS, **{"catalyst.openova.io/slot": entry.slot}),
                        "spec": {"type": "oci", "interval": "10m", "url": "oci://ghcr.io/openova-io",
                                 "secretRef": {"name": "ghcr-pull"}}})
        objects.append({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                        "metadata": _meta(entry.chart, FLUX_NS, **{"catalyst.openova.io/slot": entry.slot}),
                        "spec": {"interval": "10m", "values": {"image": entry.image},
                                 "chart": {"spec": {"chart": entry.chart, "version": content.CHART_VERSION,
                                                    "sourceRef": {"kind": "HelmRepository", "name": entry.chart}}}}})
    for package in content.CROSSPLANE_PROVIDERS:
        name = package.rsplit("/", 1)[-1].split(":")[0]
        objects.append({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "metadata": _meta(name),
                        "spec": {"package": package}})
    # The dormant bp-self-sovereign-cutover (slot 06a): templates, RBAC and status, no Jobs (R-CUT-03).
    objects += [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("self-sovereign-cutover", FLUX_NS)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": _meta("self-sovereign-cutover", FLUX_NS),
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "create", "patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _meta("self-sovereign-cutover", FLUX_NS),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "self-sovereign-cutover"},
         "subjects": [{"kind": "ServiceAccount", "name": "self-sovereign-cutover", "namespace": FLUX_NS}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(STATUS_CONFIGMAP, FLUX_NS),
         "data": {"phase": "Dormant", "cutoverComplete": "false"}},
    ]
    for index, job in enumerate(JOB_NAMES, start=1):
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": _meta(f"cutover-jobtemplate-{index:02d}-{job}", FLUX_NS,
                                          **{"catalyst.openova.io/cutover-step": str(index)}),
                        "data": {"job": job, "image": content.CUTOVER_IMAGE}})
    return objects


def _env(deployment: dict[str, Any] | None) -> dict[str, str]:
    template = (((deployment or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = template.get("containers") or []
    return {e["name"]: e.get("value", "") for c in containers for e in c.get("env") or []}


def upstream_repo_url(deployment: dict[str, Any] | None) -> tuple[str, bool]:
    """The repo catalyst-api reads and whether it is the upstream fallback (tether 4)."""
    env = _env(deployment)
    if env.get("CATALYST_GITOPS_REPO_URL"):
        return env["CATALYST_GITOPS_REPO_URL"], False
    return env.get("CATALYST_UPSTREAM_FALLBACK", UPSTREAM_REPO), True


def tether_states(objects: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Which tethers remain, from the objects by kind (static view; the egress proof is the runtime one)."""
    def first(kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in objects.get(kind, []) if o["metadata"]["name"] == name), None)

    git = first("GitRepository", "flux-system")
    registries = yaml.safe_load(((first("ConfigMap", "k3s-registries") or {}).get("data") or {})
                                .get("registries.yaml", "") or "{}") or {}
    endpoints = {e for m in (registries.get("mirrors") or {}).values() for e in m.get("endpoint") or []}
    helm = [o for o in objects.get("HelmRepository", []) if "ghcr.io" in o["spec"].get("url", "")]
    secret_users = [o for o in objects.get("HelmRepository", [])
                    if (o["spec"].get("secretRef") or {}).get("name") == "ghcr-pull"]
    url, fallback = upstream_repo_url(first("Deployment", "catalyst-api"))
    providers = [o for o in objects.get("Provider", []) if "xpkg.upbound.io" in o["spec"].get("package", "")]
    evidence = {
        1: (git is not None and "github.com" in git["spec"].get("url", ""),
            f"url {(git or {}).get('spec', {}).get('url')}"),
        2: (any("harbor.openova.io" in e for e in endpoints), f"mirror endpoints {sorted(endpoints)}"),
        3: (bool(helm), f"{len(helm)} HelmRepositories on ghcr.io"),
        4: (fallback or "github.com" in url, f"catalyst-api reads {url}{' (fallback)' if fallback else ''}"),
        5: (first("Secret", "ghcr-pull") is not None, f"{len(secret_users)} HelmRepositories reference it"),
        6: (bool(providers), f"{len(providers)} Provider packages on xpkg.upbound.io (not in the ADR deny-list)"),
        7: (any("harbor.openova.io" in e for e in endpoints), "ghcr.io/openova-io/openova/* resolve via "
            + ("the mothership" if any("harbor.openova.io" in e for e in endpoints) else "the local Harbor")),
        8: (first("ConfigMap", "os-package-mirrors") is not None, "cloud-init time only (P2)"),
    }
    return [{"number": t.number, "name": t.name, "phase": t.phase, "pivotedBy": t.pivoted_by,
             "tethered": bool(evidence[t.number][0]), "evidence": evidence[t.number][1]} for t in TETHERS]
