"""Build: what one App repo revision becomes in the vcluster (ARCHITECTURE §4, R-FLUX-02).

The steps mirror ``kustomize build`` followed by Flux's post-build substitution, with the
Blueprint standing in for the Helm chart/kustomize base an App repo points at:

1. ``values.yaml`` deep-merged with ``overlays/{env_type}/values.yaml`` (the overlay wins);
2. the Blueprint named by the version pin (the root ``kustomization.yaml``'s
   ``openova.io/blueprint`` + ``openova.io/blueprint-version`` labels) is resolved in the catalog and
   its ``spec.manifests.resources`` rendered with ``{application, values}`` (D-06 expressions) —
   or, for a Helm-kind Blueprint without resources, its chart rendered by the real ``helm``
   (:mod:`.helm`) with the merged values;
3. the repo's own manifests under ``secrets/`` (ExternalSecrets: references, never values) join;
4. a Namespace ``{app}`` (R-NAME-10) is added and every object labelled: R-NAME-23's ``openova.io/*``
   and ``app.kubernetes.io/*`` (pod templates too, so the projector can follow pods), plus Flux's
   ``kustomize.toolkit.fluxcd.io/{name,namespace}`` ownership labels;
5. ``${VAR}`` post-build variables are substituted in every string.

Everything here is pure; failures raise :class:`BuildError` with the Flux reason (``BuildFailed``,
``ArtifactFailed``) and a message naming the file or object at fault. Those are terminal for the
revision — only a new commit (or catalog change) can fix them — so the reconciler stalls on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from catalyst_sim import fastyaml
from catalyst_sim.control.catalog import BlueprintRegistry
from catalyst_sim.control.catalog.expressions import render_template
from catalyst_sim.control.gitops import helm
from catalyst_sim.control.gitops.conditions import ARTIFACT_FAILED, BUILD_FAILED
from catalyst_sim.control.gitops.crds import FLUX_NAMESPACE
from catalyst_sim.model.base import CatalystError

KUSTOMIZATION_FILE = "kustomization.yaml"
VALUES_FILE = "values.yaml"
SECRETS_DIR = "secrets/"
PIN_BLUEPRINT = "openova.io/blueprint"
PIN_VERSION = "openova.io/blueprint-version"
FLUX_NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
FLUX_NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
SUBSTITUTE_ANNOTATION = "kustomize.toolkit.fluxcd.io/substitute"
_TEMPLATE_PATHS = (("spec", "template"), ("spec", "jobTemplate", "spec", "template"))
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[=-])([^}]*))?\}")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BuildError(Exception):
    def __init__(self, message: str, *, reason: str = BUILD_FAILED) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Build:
    blueprint: str
    version: str
    objects: list[dict[str, Any]]  # namespaced objects get their namespace when applied


# ---------------------------------------------------------------------- repo files


def load_yaml(files: Mapping[str, bytes], path: str, *, required: bool = True) -> Any:
    if path not in files:
        if required:
            raise BuildError(f"{path} not found in the artifact", reason=ARTIFACT_FAILED)
        return None
    try:
        return fastyaml.safe_load(files[path].decode())
    except UnicodeDecodeError:
        raise BuildError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise BuildError(f"{path}: invalid YAML: {_one_line(exc)}") from None


def load_documents(files: Mapping[str, bytes], path: str) -> list[Any]:
    try:
        return [doc for doc in fastyaml.safe_load_all(files[path].decode()) if doc is not None]
    except UnicodeDecodeError:
        raise BuildError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise BuildError(f"{path}: invalid YAML: {_one_line(exc)}") from None


def repo_kustomization(files: Mapping[str, bytes]) -> dict[str, Any]:
    """The root ``kustomization.yaml`` (a Flux Kustomization) of the revision."""
    doc = load_yaml(files, KUSTOMIZATION_FILE)
    if not isinstance(doc, dict) or doc.get("kind") != "Kustomization":
        raise BuildError(f"{KUSTOMIZATION_FILE}: expected a Flux Kustomization object")
    return doc


def blueprint_pin(kustomization: Mapping[str, Any]) -> tuple[str, str]:
    labels = (kustomization.get("metadata") or {}).get("labels") or {}
    name, version = labels.get(PIN_BLUEPRINT), labels.get(PIN_VERSION)
    if not name or not version:
        raise BuildError(f"{KUSTOMIZATION_FILE}: the version pin labels {PIN_BLUEPRINT} and {PIN_VERSION} "
                         f"are required")
    return str(name), str(version)


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's values merge: maps merge key by key, anything else in ``overlay`` replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def merged_values(files: Mapping[str, bytes], env_type: str) -> dict[str, Any]:
    base = load_yaml(files, VALUES_FILE)
    if base is None:
        base = {}
    if not isinstance(base, dict):
        raise BuildError(f"{VALUES_FILE}: expected a mapping at the top level")
    path = f"overlays/{env_type}/values.yaml"
    overlay = load_yaml(files, path, required=False)
    if overlay is None:
        return base
    if not isinstance(overlay, dict):
        raise BuildError(f"{path}: expected a mapping at the top level")
    return deep_merge(base, overlay)


def repo_manifests(files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    """Objects the repo carries itself under ``secrets/`` (multi-document YAML files)."""
    found: list[dict[str, Any]] = []
    for path in sorted(p for p in files if p.startswith(SECRETS_DIR) and p.endswith((".yaml", ".yml"))):
        for index, doc in enumerate(load_documents(files, path)):
            found.append(_checked_object(doc, f"{path}[{index}]"))
    return found


# ---------------------------------------------------------------------- objects


def _checked_object(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise BuildError(f"{where}: expected a Kubernetes object, got {type(doc).__name__}")
    meta = doc.get("metadata")
    missing = [k for k in ("apiVersion", "kind") if not isinstance(doc.get(k), str) or not doc.get(k)]
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        missing.append("metadata.name")
    if missing:
        raise BuildError(f"{where}: not a Kubernetes object (missing {', '.join(missing)})")
    return doc


def object_ref(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns}/{meta.get('name')}" if ns else f"{obj.get('kind')}/{meta.get('name')}"


def render_chart(registry: BlueprintRegistry, name: str, version: str, ref: str, context: dict[str, Any], *,
                 namespace: str) -> list[dict[str, Any]]:
    """A Helm-kind Blueprint: its chart, beside the Blueprint file, rendered by the real helm."""
    where = f"Blueprint {name}@{version} spec.manifests.source.ref"
    source = registry.source_of(name, version)
    if "://" in ref or not source:
        raise BuildError(f"{where}: only a chart directory beside the Blueprint file can be rendered, not {ref!r}",
                         reason=ARTIFACT_FAILED)
    home = Path(source).resolve().parent
    chart = (home / ref).resolve()
    if not chart.is_relative_to(home):
        raise BuildError(f"{where}: {ref!r} leaves the Blueprint's directory", reason=ARTIFACT_FAILED)
    try:
        objects = helm.template(chart, release=str(context["application"]["name"]), namespace=namespace,
                                values=context["values"])
    except helm.HelmError as exc:
        raise BuildError(f"Blueprint {name}@{version} chart {ref}: {exc.message}") from None
    return [_checked_object(obj, f"Blueprint {name}@{version} chart {ref}") for obj in objects]


def render_blueprint(registry: BlueprintRegistry, name: str, version: str, context: dict[str, Any],
                     organization: str | None, *, target_namespace: str = "") -> list[dict[str, Any]]:
    try:
        blueprint = registry.get(name, version, organization=organization)
    except CatalystError as exc:
        raise BuildError(f"Blueprint {name}@{version}: {exc}") from None
    manifests = blueprint.spec.manifests
    if manifests is not None and not manifests.resources and manifests.source is not None \
            and manifests.source.kind == "HelmChart":
        return render_chart(registry, blueprint.name, blueprint.version, manifests.source.ref, context,
                            namespace=target_namespace)
    if manifests is None or not manifests.resources:
        source = manifests.source.kind if manifests is not None and manifests.source else "no"
        raise BuildError(f"Blueprint {name}@{version} has no spec.manifests.resources to render ({source} source; "
                         f"composite Blueprints are not Applications)")
    rendered: list[dict[str, Any]] = []
    for index, template in enumerate(manifests.resources):
        where = f"Blueprint {name}@{version} spec.manifests.resources[{index}]"
        try:
            obj = render_template(template, context, roots=("application", "values"))
        except CatalystError as exc:
            raise BuildError(f"{where}: {exc}") from None
        rendered.append(_checked_object(obj, where))
    return rendered


def valid_labels(labels: Mapping[str, str | None]) -> dict[str, str]:
    """Only the entries that are legal label values (unknown context values are simply left out)."""
    return {k: str(v) for k, v in labels.items() if v and len(str(v)) <= 63 and _LABEL_VALUE.match(str(v))}


def label(obj: dict[str, Any], *, catalyst: Mapping[str, str], owner: Mapping[str, str], app: str) -> None:
    """Add R-NAME-23 labels (Catalyst's own keys win) and Flux's ownership labels, in place."""
    meta = obj.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    labels.setdefault("app.kubernetes.io/name", app)
    labels.setdefault("app.kubernetes.io/instance", app)
    labels.setdefault("app.kubernetes.io/managed-by", "catalyst")
    labels.update(catalyst)
    labels.update(owner)
    meta["labels"] = labels
    for path in _TEMPLATE_PATHS:
        node: Any = obj
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            template_meta = node.setdefault("metadata", {})
            template_meta["labels"] = {**(template_meta.get("labels") or {}), **catalyst}


def substitute(value: Any, variables: Mapping[str, str]) -> Any:
    """Flux post-build substitution in every string: ``${VAR}``, ``${VAR:=default}``, ``${VAR:-default}``
    (an unset variable without a default becomes empty, Flux's non-strict mode); ``$${`` escapes."""
    if isinstance(value, str):
        if "$" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, operator, default = match.group(1), match.group(2), match.group(3)
            found = variables.get(name)
            if operator is not None and (found is None or (operator.startswith(":") and found == "")):
                return default or ""
            return found or ""

        return _VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {substitute(k, variables) if isinstance(k, str) else k: substitute(v, variables)
                for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    return value


def _substitution_disabled(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    return "disabled" in ((meta.get("labels") or {}).get(SUBSTITUTE_ANNOTATION),
                          (meta.get("annotations") or {}).get(SUBSTITUTE_ANNOTATION))


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    meta = obj.get("metadata") or {}
    return group, str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def build(
    files: Mapping[str, bytes],
    *,
    app: str,
    kustomization: str,
    env_type: str,
    target_namespace: str,
    catalog: BlueprintRegistry,
    workload_labels: Mapping[str, str | None],
    variables: Mapping[str, str],
    organization: str | None = None,
) -> Build:
    """Everything the revision in ``files`` asks the vcluster to run, labelled and substituted."""
    root = repo_kustomization(files)
    name, version = blueprint_pin(root)
    values = merged_values(files, env_type)
    found = values.get("application")
    application: dict[str, Any] = found if isinstance(found, dict) else {}
    context = {
        "application": {**application, "name": app, **({"organization": organization} if organization else {})},
        "values": values,
    }
    objects = (render_blueprint(catalog, name, version, context, organization, target_namespace=target_namespace)
               + repo_manifests(files))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target_namespace}}
    if not any(o["kind"] == "Namespace" and o["metadata"]["name"] == target_namespace for o in objects):
        objects.insert(0, namespace)
    root_labels = (root.get("metadata") or {}).get("labels") or {}
    catalyst = valid_labels({
        "openova.io/sovereign": root_labels.get("openova.io/sovereign"),  # unless the engine knows better
        **{k: v for k, v in workload_labels.items() if v},
        "openova.io/application": app,
        "openova.io/blueprint": name,
        "openova.io/blueprint-version": version,
    })
    owner = {FLUX_NAME_LABEL: kustomization, FLUX_NAMESPACE_LABEL: FLUX_NAMESPACE}
    finished: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str, str]] = set()
    for obj in objects:
        label(obj, catalyst=catalyst, owner=owner, app=app)
        if not _substitution_disabled(obj):
            obj = substitute(obj, variables)
        identity = _identity(obj)
        if identity in seen:
            raise BuildError(f"may not add resource with an already registered id: {object_ref(obj)}")
        seen.add(identity)
        finished.append(obj)
    return Build(blueprint=name, version=version, objects=finished)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
