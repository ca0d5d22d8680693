"""The initial manifests of a new Application repo (ARCHITECTURE.md §4, R-GIT-01).

Every branch (``develop``, ``staging``, ``main``) starts with the same files, so a later promotion
PR carries only real changes. What differs per Environment is expressed as Flux ``postBuild``
substitution variables (``${ENV_TYPE}``, ``${ENVIRONMENT}``) that the GitOps engine in each vcluster
fills in, and as the ``overlays/{dev,stg,prod}/values.yaml`` files.

Secret values never enter the repo (R-GIT-02): config fields the configSchema marks as passwords
(``x-catalyst-ui-hint: password``) are left out of ``values.yaml`` and surface only as keys of an
ExternalSecret that points at the Environment's OpenBao path root (R-NAME-18).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalyst_sim import fastyaml

FLUX_KUSTOMIZATION_API = "kustomize.toolkit.fluxcd.io/v1"
EXTERNAL_SECRET_API = "external-secrets.io/v1beta1"
OVERLAY_ENV_TYPES = ("dev", "stg", "prod")
APP_REPO_FILES = (
    "kustomization.yaml",
    "values.yaml",
    "overlays/dev/values.yaml",
    "overlays/stg/values.yaml",
    "overlays/prod/values.yaml",
    "secrets/external-secrets.yaml",
    "CODEOWNERS",
)


@dataclass(frozen=True)
class AppManifestInput:
    """Everything the initial commit of one Application repo is made of."""

    sovereign: str
    organization: str
    app: str
    blueprint: str
    version: str
    config: dict[str, Any]
    config_schema: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    dependencies: dict[str, str] = field(default_factory=dict)  # alias -> App name (R-DEP-04)
    overlay: str = "small"
    overlay_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # size -> values
    owners_team: str = "owners"


def secret_fields(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every config field the schema marks as a password (R-CS-02)."""
    found: list[str] = []
    for key, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        path = f"{prefix}{key}"
        if prop.get("x-catalyst-ui-hint") == "password":
            found.append(path)
        if prop.get("type") == "object" or "properties" in prop:
            found.extend(secret_fields(prop, f"{path}."))
    return found


def _without(config: dict[str, Any], dotted: list[str]) -> dict[str, Any]:
    stripped: dict[str, Any] = fastyaml.safe_load(fastyaml.safe_dump(config)) or {}
    for path in dotted:
        node: Any = stripped
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return stripped


def _dump(doc: Any, header: str = "") -> str:
    body = fastyaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    return f"# {header}\n{body}" if header else body


def workload_labels(inp: AppManifestInput) -> dict[str, str]:
    """The R-NAME-23 label set that does not depend on where the App runs."""
    return {
        "app.kubernetes.io/name": inp.app,
        "app.kubernetes.io/managed-by": "catalyst",
        "openova.io/sovereign": inp.sovereign,
        "openova.io/organization": inp.organization,
        "openova.io/environment": "${ENVIRONMENT}",
        "openova.io/application": inp.app,
        "openova.io/blueprint": inp.blueprint,
        "openova.io/blueprint-version": inp.version,
    }


def kustomization(inp: AppManifestInput) -> dict[str, Any]:
    """The root Flux Kustomization; its blueprint-version label is the version pin (R-APP-03)."""
    spec: dict[str, Any] = {
        "interval": "1m",
        "path": "./",
        "prune": True,
        "targetNamespace": inp.app,
        "sourceRef": {"kind": "GitRepository", "name": inp.app},
        "postBuild": {"substitute": {"APPLICATION": inp.app, "ORGANIZATION": inp.organization}},
    }
    if inp.depends_on:
        spec["dependsOn"] = [{"name": name} for name in inp.depends_on]
    return {
        "apiVersion": FLUX_KUSTOMIZATION_API,
        "kind": "Kustomization",
        "metadata": {"name": inp.app, "labels": workload_labels(inp)},
        "spec": spec,
    }


def base_values(inp: AppManifestInput) -> dict[str, Any]:
    values: dict[str, Any] = {
        "application": {"name": inp.app, "blueprint": inp.blueprint, "version": inp.version},
        "overlay": inp.overlay,
        "config": _without(inp.config, secret_fields(inp.config_schema)),
    }
    if inp.dependencies:
        values["dependencies"] = {
            alias: {"application": target, "connectionSecret": f"{target}-connection"}
            for alias, target in sorted(inp.dependencies.items())
        }
    return values


def overlay_values(inp: AppManifestInput, env_type: str) -> dict[str, Any]:
    return {"environment": {"type": env_type}, **inp.overlay_values.get(inp.overlay, {})}


def external_secrets(inp: AppManifestInput) -> dict[str, Any]:
    """ExternalSecret references only: OpenBao paths, never values (R-GIT-02, R-SEC-01)."""
    keys = secret_fields(inp.config_schema) or ["password"]
    return {
        "apiVersion": EXTERNAL_SECRET_API,
        "kind": "ExternalSecret",
        "metadata": {"name": f"{inp.app}-credentials", "labels": workload_labels(inp)},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "openbao"},
            "target": {"name": f"{inp.app}-credentials"},
            "data": [
                {
                    "secretKey": key.replace(".", "-"),
                    "remoteRef": {
                        "key": f"org/{inp.organization}/env/${{ENV_TYPE}}/{inp.app}/credentials",
                        "property": key,
                    },
                }
                for key in keys
            ],
        },
    }


def codeowners(inp: AppManifestInput) -> str:
    return (
        f"# Reviewers of every change to {inp.app} (R-APP-02). Promotion approvers come from the\n"
        f"# destination Environment's EnvironmentPolicy, not from this file.\n"
        f"* @{inp.organization}/{inp.owners_team}\n"
    )


def render_app_repo(inp: AppManifestInput) -> dict[str, str]:
    """Path -> file content for the initial commit of ``{org}/{app}``."""
    generated = f"Generated by Catalyst provisioning for {inp.organization}/{inp.app}"
    files = {
        "kustomization.yaml": _dump(kustomization(inp), generated),
        "values.yaml": _dump(base_values(inp), generated),
        "secrets/external-secrets.yaml": _dump(external_secrets(inp), generated),
        "CODEOWNERS": codeowners(inp),
    }
    for env_type in OVERLAY_ENV_TYPES:
        files[f"overlays/{env_type}/values.yaml"] = _dump(overlay_values(inp, env_type), generated)
    assert set(files) == set(APP_REPO_FILES)
    return files
