"""The API types a vcluster's Flux bootstrap registers (R-ENVC-01, R-ENVC-03).

Flux's source and kustomize controllers serve ``GitRepository`` (``source.toolkit.fluxcd.io/v1``)
and ``Kustomization`` (``kustomize.toolkit.fluxcd.io/v1``); ESO's ``ExternalSecret`` (and the two
store kinds it references) must be served too, or every App repo's ``secrets/`` manifests would
fail to apply. The schemas keep unknown fields: this engine, not OpenAPI validation, is what
interprets them, exactly like the real controllers' CRDs leave most validation to the reconciler.
"""

from __future__ import annotations

from typing import Any

FLUX_NAMESPACE = "flux-system"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
ESO_GROUP = "external-secrets.io"
SOURCE_API = f"{SOURCE_GROUP}/v1"
KUSTOMIZE_API = f"{KUSTOMIZE_GROUP}/v1"
ESO_API = f"{ESO_GROUP}/v1beta1"

# Flux's own field manager for applied workloads; the owner manager writes the Flux objects' specs
# (in Catalyst the environment-controller does that, R-ENVC-01/02).
FIELD_MANAGER = "kustomize-controller"
OWNER_MANAGER = "catalyst-environment-controller"

_READY_COLUMNS = [
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Status", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].message'},
]


def _crd(
    group: str,
    kind: str,
    plural: str,
    short_names: list[str],
    versions: list[str],
    columns: list[dict[str, Any]],
    *,
    scope: str = "Namespaced",
    categories: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{group}",
            "labels": {"app.kubernetes.io/part-of": "flux" if "fluxcd" in group else "external-secrets"},
        },
        "spec": {
            "group": group,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                **({"categories": categories} if categories else {}),
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": index == len(versions) - 1,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
                for index, version in enumerate(versions)
            ],
        },
    }


def bootstrap_crds() -> list[dict[str, Any]]:
    """Every CustomResourceDefinition the in-vcluster bootstrap creates, in creation order."""
    return [
        _crd(
            SOURCE_GROUP,
            "GitRepository",
            "gitrepositories",
            ["gitrepo"],
            ["v1"],
            [{"name": "URL", "type": "string", "jsonPath": ".spec.url"}, *_READY_COLUMNS],
            categories=["flux"],
        ),
        _crd(KUSTOMIZE_GROUP, "Kustomization", "kustomizations", ["ks"], ["v1"], _READY_COLUMNS, categories=["flux"]),
        _crd(
            ESO_GROUP,
            "ExternalSecret",
            "externalsecrets",
            ["es"],
            ["v1beta1"],
            [
                {"name": "Store", "type": "string", "jsonPath": ".spec.secretStoreRef.name"},
                {"name": "Refresh Interval", "type": "string", "jsonPath": ".spec.refreshInterval"},
                {"name": "Status", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
            ],
            categories=["external-secrets"],
        ),
        _crd(ESO_GROUP, "SecretStore", "secretstores", ["ss"], ["v1beta1"], _READY_COLUMNS),
        _crd(ESO_GROUP, "ClusterSecretStore", "clustersecretstores", ["css"], ["v1beta1"], _READY_COLUMNS,
             scope="Cluster"),
    ]
