"""The Flux objects one App gets in a vcluster (R-FLUX-02, D-08), derived from its repo.

``GitRepository {app}`` follows the Environment's branch of ``{org}/{app}``; ``Kustomization {app}``
takes its spec from the repo's root ``kustomization.yaml`` at the fetched revision (``dependsOn``
from the Blueprint's ``depends``, R-PROV-01(6); ``targetNamespace``; ``prune``;
``postBuild.substitute``), plus what only the vcluster knows: ``ENV_TYPE``, ``ENVIRONMENT``,
``ORGANIZATION``, ``VCLUSTER``. Those engine variables win over the repo's, because the same repo
content is promoted through every Environment and must mean "this Environment" in each.

``wait: true`` is set explicitly: Flux's default applies without health checks, but Catalyst's App
state (R-CARD-02: Running only when Ready at the branch head and the pods are up) needs Ready to
mean healthy.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from catalyst_sim.control.gitops.crds import FLUX_NAMESPACE, KUSTOMIZE_API, SOURCE_API
from catalyst_sim.control.gitops.render import VARIABLE_NAME, substitute, valid_labels

CREDENTIALS_SECRET = "catalyst-git-credentials"
DEFAULT_INTERVAL = "1m"
_SPEC_FIELDS = ("interval", "retryInterval", "timeout", "prune", "targetNamespace", "suspend", "force")


def credentials_secret(username: str, token: str) -> dict[str, Any]:
    """Basic-auth pull credentials for every GitRepository of the vcluster (R-ENVC-01)."""

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": CREDENTIALS_SECRET, "namespace": FLUX_NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "catalyst"}},
        "type": "Opaque",
        "data": {"username": b64(username), "password": b64(token)},
    }


def git_repository(app: str, url: str, branch: str, *, interval: str = DEFAULT_INTERVAL,
                   labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": app, "namespace": FLUX_NAMESPACE, "labels": dict(labels or {})},
        "spec": {
            "interval": interval,
            "url": url,
            "ref": {"branch": branch},
            "secretRef": {"name": CREDENTIALS_SECRET},
            "timeout": "60s",
        },
    }


def kustomization(app: str, repo_doc: Mapping[str, Any] | None, variables: Mapping[str, str],
                  *, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The in-vcluster Kustomization for ``app``; ``repo_doc`` is the repo's kustomization.yaml
    (``None`` while no revision has been fetched: then the defaults of a fresh App repo)."""
    source_spec: Mapping[str, Any] = (repo_doc or {}).get("spec") or {}
    spec: dict[str, Any] = {
        "interval": DEFAULT_INTERVAL,
        "path": "./",
        "prune": True,
        "wait": True,
        "targetNamespace": app,
    }
    spec.update({k: source_spec[k] for k in _SPEC_FIELDS if k in source_spec})
    spec["sourceRef"] = {"kind": "GitRepository", "name": app, "namespace": FLUX_NAMESPACE}
    depends = [d for d in source_spec.get("dependsOn") or [] if isinstance(d, Mapping) and d.get("name")]
    if depends:
        spec["dependsOn"] = [{"name": str(d["name"]), **({"namespace": str(d["namespace"])} if d.get("namespace")
                                                          else {})} for d in depends]
    post = source_spec.get("postBuild") or {}
    repo_vars = post.get("substitute") if isinstance(post, Mapping) else None
    merged = {str(k): str(v) for k, v in (repo_vars or {}).items() if VARIABLE_NAME.match(str(k))}
    merged.update(variables)
    spec["postBuild"] = {"substitute": dict(sorted(merged.items()))}
    repo_labels = ((repo_doc or {}).get("metadata") or {}).get("labels") or {}
    all_labels = {str(k): str(v) for k, v in {**repo_labels, **(labels or {})}.items()}
    return {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": app, "namespace": FLUX_NAMESPACE, "labels": valid_labels(substitute(all_labels, merged))},
        "spec": spec,
    }


def depends_on(ks: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(namespace, name)`` of every dependency (namespace defaults to the dependent's own)."""
    own = (ks.get("metadata") or {}).get("namespace") or FLUX_NAMESPACE
    return [(str(d.get("namespace") or own), str(d["name"]))
            for d in (ks.get("spec") or {}).get("dependsOn") or [] if isinstance(d, Mapping) and d.get("name")]
