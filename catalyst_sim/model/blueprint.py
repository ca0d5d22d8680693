"""The Blueprint kind (R-BP-01..08, BLUEPRINT-AUTHORING §3).

Two entry points:

* :class:`Blueprint` is the documented shape, strict: unknown fields are errors that name the field,
  ``apiVersion`` must be ``catalyst.openova.io/v1alpha1`` and the name must be ``bp-*``.
* :func:`normalize_blueprint` accepts the shapes found in real ``platform/*/blueprint.yaml`` files
  (R-BP-08, C-12) and returns a strict :class:`Blueprint` plus warnings instead of crashing.

Where the documented and real shapes disagree (C-12) the strict model accepts both spellings that
are unambiguous: the version at ``spec.version`` (real) or ``metadata.version`` (doc); ``card.tagline``
(doc) or ``card.summary`` (real), plus the real ``family``/``description``/``docs``;
``placementSchema.default`` (real). Only the spellings that need rewriting (bare-string
``depends``, ``apiVersion .../v1``, a name without ``bp-``, ``manifests.chart``) go through the
normaliser.

Harness extensions (divergences, disclosed per R-PRIN-03):

* ``spec.manifests.resources``: a list of Kubernetes object templates (Deployment, Service, ...)
  whose strings may hold ``{{ .values.x }}`` / ``{{ .application.name }}`` placeholders (D-06
  language), rendered by the GitOps engine with the App repo's values; it stands in for a Helm chart
  or Kustomize base, which the simulator does not fetch.
* ``spec.secrets``: ``[{name, path, keys}]``, the ExternalSecret references an App of this Blueprint
  needs; ``path`` is relative to the Environment's OpenBao root ``org/{org}/env/{env_type}/`` (R-NAME-18)
  and may use placeholders. Values never appear (R-GIT-02).
* ``spec.owner.organization``: the Org owning a ``private`` Blueprint. Upstream it is implied by the
  ``{org}/shared-blueprints`` repo the Blueprint lives in; the registry fills it from the load source
  when absent.

Placement modes: R-BP-04's three (single-region, active-active, active-hotstandby). MULTI-REGION-DNS
adds active-passive-warm and weighted-canary (C-20); they are not accepted here.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

import semver
from pydantic import Field, ValidationError, field_validator, model_validator

from catalyst_sim.model.base import (
    API_GROUP,
    API_VERSION,
    CatalystError,
    CatalystObject,
    ObjectMeta,
    Problem,
    Strict,
    problems_from_validation,
    register_kind,
)

BLUEPRINT_NAME_RE = re.compile(r"^bp-[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
PLACEMENT_MODES = ("single-region", "active-active", "active-hotstandby")
OVERLAY_SIZES = ("small", "medium", "large")
COMPOSITE_CATEGORY = "composite"
DURATION_RE = re.compile(r"^[1-9]\d*(s|m|h|d|w|y)$")
LEGACY_API_VERSIONS = (f"{API_GROUP}/v1",)

PlacementMode = Literal["single-region", "active-active", "active-hotstandby"]
Visibility = Literal["listed", "unlisted", "private"]


def _nonblank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("must not be empty")
    return value


class BlueprintMeta(ObjectMeta):
    """``metadata``; ``version`` is where the doc example puts it (C-12)."""

    version: str | None = None


class Card(Strict):
    """Marketplace presentation (R-BP-02). Doc and real spellings both accepted."""

    title: str
    tagline: str | None = None
    summary: str | None = None
    description: str | None = None
    category: str | None = None
    family: str | None = None
    tags: list[str] = []
    icon: str | None = None
    screenshots: list[str] = []
    license: str | None = None
    documentation: str | None = None
    docs: str | None = None

    @field_validator("title", "tagline", "summary")
    @classmethod
    def _not_blank(cls, v: str | None) -> str | None:
        return _nonblank(v)

    @model_validator(mode="after")
    def _needs_summary(self) -> Card:
        if not (self.summary or self.tagline):
            raise ValueError("card needs a non-empty summary (or tagline) (R-BP-02)")
        return self

    @property
    def text(self) -> str:
        """The one-line pitch whichever spelling the author used."""
        return (self.summary or self.tagline or "").strip()


class Owner(Strict):
    team: str | None = None
    contact: str | None = None
    organization: str | None = None  # harness extension: owning Org of a private Blueprint


class PlacementSchema(Strict):
    """Supported placement modes and region bounds (R-BP-04)."""

    modes: list[PlacementMode] = Field(min_length=1)
    minRegions: int = Field(default=1, ge=1)
    maxRegions: int | None = Field(default=None, ge=1)
    default: PlacementMode | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PlacementSchema:
        if self.maxRegions is not None and self.maxRegions < self.minRegions:
            raise ValueError(f"maxRegions ({self.maxRegions}) is below minRegions ({self.minRegions})")
        if self.default is not None and self.default not in self.modes:
            raise ValueError(f"default {self.default!r} is not one of modes {self.modes}")
        if len(set(self.modes)) != len(self.modes):
            raise ValueError("modes has duplicates")
        return self

    def problems(self, mode: str, regions: int) -> list[str]:
        """Why a placement (mode, number of regions) is outside this schema; empty when allowed.
        Any mode other than single-region needs at least two regions (R-MR-02)."""
        out = []
        if mode not in self.modes:
            out.append(f"placement mode {mode!r} is not supported (supported: {', '.join(self.modes)})")
        if regions < self.minRegions:
            out.append(f"{regions} region(s) is below minRegions {self.minRegions}")
        if self.maxRegions is not None and regions > self.maxRegions:
            out.append(f"{regions} region(s) is above maxRegions {self.maxRegions}")
        if mode == "single-region" and regions != 1:
            out.append("single-region placement takes exactly one region")
        if mode != "single-region" and mode in PLACEMENT_MODES and regions < 2:
            out.append(f"{mode} needs at least two regions")
        return out


class Dependency(Strict):
    """One ``depends[]`` entry (R-DEP-01). ``version`` is an npm-style range; absent means any."""

    blueprint: str
    version: str = "*"
    alias: str | None = None
    when: str | bool | None = None
    values: dict[str, Any] = {}

    @field_validator("blueprint")
    @classmethod
    def _bp_name(cls, v: str) -> str:
        if not BLUEPRINT_NAME_RE.match(v):
            raise ValueError(f"{v!r} is not a Blueprint name (bp-<name>)")
        return v

    @field_validator("alias")
    @classmethod
    def _alias(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", v):
            raise ValueError(f"alias {v!r} must be a DNS-1123 label (it can name an Application)")
        return v

    @property
    def key(self) -> str:
        """How the parent refers to this dependency: its alias, else the Blueprint without ``bp-``."""
        return self.alias or short_name(self.blueprint)


class ManifestSource(Strict):
    kind: Literal["HelmChart", "Kustomize", "OAM"]
    ref: str

    @field_validator("kind")
    @classmethod
    def _no_oam(cls, v: str) -> str:
        if v == "OAM":
            raise ValueError("manifests.source.kind OAM is not supported yet (R-BP-05)")
        return v


class Manifests(Strict):
    """How an Application of this Blueprint is materialized (R-BP-05) + the ``resources`` extension."""

    source: ManifestSource | None = None
    overlays: dict[Literal["small", "medium", "large"], dict[str, Any]] = {}
    resources: list[dict[str, Any]] = []

    @field_validator("resources")
    @classmethod
    def _k8s_objects(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, obj in enumerate(v):
            missing = [k for k in ("apiVersion", "kind", "metadata") if k not in obj]
            if missing:
                raise ValueError(f"resources[{i}] is not a Kubernetes object (missing {', '.join(missing)})")
            if not isinstance(obj.get("metadata"), dict) or "name" not in obj["metadata"]:
                raise ValueError(f"resources[{i}].metadata.name is required")
        return v

    @model_validator(mode="after")
    def _something(self) -> Manifests:
        if self.source is None and not self.resources:
            raise ValueError("manifests needs a source (HelmChart/Kustomize) or resources")
        return self


class Upgrades(Strict):
    """R-BP-06: version patterns an upgrade may come from, and patterns with no upgrade path."""

    from_: list[str] = Field(default=[], alias="from")
    blocks: list[str] = []


class Rotation(Strict):
    """R-BP-07: a secret the App owns, rotated by SecretPolicy."""

    kind: str
    name: str
    ttl: str

    @field_validator("ttl")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not DURATION_RE.match(v):
            raise ValueError(f"ttl {v!r} must be a duration like 90d, 12h, 1y")
        return v


class Observability(Strict):
    metrics: str | None = None
    logs: str | None = None
    traces: str | None = None


class SecretRef(Strict):
    """Harness extension: an ExternalSecret reference the App needs (never a value)."""

    name: str
    path: str
    keys: list[str] = Field(min_length=1)


class BlueprintSpec(Strict):
    version: str | None = None
    card: Card
    visibility: Visibility = "listed"
    owner: Owner | None = None
    configSchema: dict[str, Any] = {"type": "object"}
    placementSchema: PlacementSchema | None = None
    depends: list[Dependency] = []
    manifests: Manifests | None = None
    upgrades: Upgrades | None = None
    rotation: list[Rotation] = []
    observability: Observability | None = None
    outputs: dict[str, Any] = {}
    dynamicSecrets: bool = False
    secrets: list[SecretRef] = []  # harness extension

    @field_validator("depends")
    @classmethod
    def _unique_keys(cls, v: list[Dependency]) -> list[Dependency]:
        seen: dict[str, int] = {}
        for i, dep in enumerate(v):
            if dep.key in seen:
                raise ValueError(
                    f"depends[{i}] and depends[{seen[dep.key]}] share the key {dep.key!r}; give one an alias"
                )
            seen[dep.key] = i
        return v


@register_kind
class Blueprint(CatalystObject):
    """A ``catalyst.openova.io/v1alpha1`` Blueprint (R-BP-01)."""

    apiVersion: Literal["catalyst.openova.io/v1alpha1"] = API_VERSION
    kind: Literal["Blueprint"] = "Blueprint"
    metadata: BlueprintMeta
    spec: BlueprintSpec

    @field_validator("metadata")
    @classmethod
    def _name(cls, v: BlueprintMeta) -> BlueprintMeta:
        if not BLUEPRINT_NAME_RE.match(v.name) or len(v.name) > 63:
            raise ValueError(f"name {v.name!r} must be bp-<name> (lowercase letters, digits, '-'; ≤63 chars)")
        return v

    @model_validator(mode="after")
    def _version(self) -> Blueprint:
        meta_v, spec_v = self.metadata.version, self.spec.version
        if meta_v is None and spec_v is None:
            raise ValueError("a Blueprint needs a version (spec.version, or metadata.version per C-12)")
        if meta_v is not None and spec_v is not None and meta_v != spec_v:
            raise ValueError(f"metadata.version {meta_v!r} and spec.version {spec_v!r} disagree")
        text = spec_v or meta_v
        assert text is not None
        try:
            semver.Version.parse(text)
        except ValueError:
            raise ValueError(f"version {text!r} is not a semantic version (MAJOR.MINOR.PATCH)") from None
        if self.is_composite:
            if self.spec.manifests is not None:
                raise ValueError(
                    "a composite Blueprint does not become an Application, so it carries no "
                    "manifests (its children do)"
                )
            if not self.spec.depends:
                raise ValueError("a composite Blueprint must depend on the Blueprints it bundles")
        return self

    @property
    def version(self) -> str:
        v = self.spec.version or self.metadata.version
        assert v is not None
        return v

    @property
    def semver(self) -> semver.Version:
        return semver.Version.parse(self.version)

    @property
    def is_composite(self) -> bool:
        """``card.category: composite`` marks a bundle (OAM "Application", ARCH §13, R-CAT-04)."""
        return self.spec.card.category == COMPOSITE_CATEGORY

    @property
    def visibility(self) -> str:
        return self.spec.visibility

    @property
    def owner_organization(self) -> str | None:
        return self.spec.owner.organization if self.spec.owner else None

    @property
    def short_name(self) -> str:
        return short_name(self.name)

    def overlay_values(self) -> dict[str, dict[str, Any]]:
        """``manifests.overlays`` as size -> values (empty when the Blueprint has none)."""
        if self.spec.manifests is None:
            return {}
        return {size: copy.deepcopy(values) for size, values in self.spec.manifests.overlays.items()}

    def ref(self) -> str:
        return f"Blueprint/{self.name}@{self.version}"


def short_name(blueprint: str) -> str:
    """``bp-postgres`` -> ``postgres`` (R-NAME-21 default App names)."""
    return blueprint[3:] if blueprint.startswith("bp-") else blueprint


def parse_blueprint(doc: Any, *, source: str = "") -> Blueprint:
    """Strictly parse one document; errors name the file, the object and every bad field."""
    name = _doc_name(doc)
    if not isinstance(doc, dict):
        raise CatalystError.single(
            f"expected a mapping, got {type(doc).__name__}", source=source, object=name
        )
    try:
        return Blueprint.model_validate(doc)
    except ValidationError as err:
        raise CatalystError(problems_from_validation(err, object=name, source=source)) from None


def _doc_name(doc: Any) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
        name = doc["metadata"].get("name")
        if name:
            return f"Blueprint/{name}"
    return "Blueprint"


def normalize_blueprint(doc: Any, *, source: str = "") -> tuple[Blueprint, list[Problem]]:
    """Accept a real-file shape (R-BP-08, C-12): return the strict Blueprint and the warnings.

    Rewrites, each with a warning naming the field: ``apiVersion catalyst.openova.io/v1`` ->
    ``v1alpha1``; ``metadata.name`` without ``bp-`` -> ``bp-<name>``; bare-string ``depends`` entries
    -> ``{blueprint, version: '*'}``; dependency names without ``bp-``; ``manifests.chart: ./chart`` ->
    ``manifests.source {kind: HelmChart, ref: ./chart}``; a card without summary/tagline gets its
    ``description``; a missing ``visibility`` becomes ``listed``; manifests on a composite are dropped.
    Anything else that is wrong still raises :class:`CatalystError` (all problems at once).
    """
    if not isinstance(doc, dict):
        raise CatalystError.single(f"expected a mapping, got {type(doc).__name__}", source=source)
    data = copy.deepcopy(doc)
    warnings: list[Problem] = []

    def warn(message: str, field: str) -> None:
        warnings.append(Problem(message=message, field=field, object=_doc_name(data), source=source))

    if data.get("apiVersion") in LEGACY_API_VERSIONS:
        warn(f"apiVersion {data['apiVersion']} normalized to {API_VERSION}", "apiVersion")
        data["apiVersion"] = API_VERSION
    meta = data.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("name"), str) and not meta["name"].startswith("bp-"):
        warn(f"name {meta['name']!r} normalized to 'bp-{meta['name']}'", "metadata.name")
        meta["name"] = f"bp-{meta['name']}"
    spec = data.get("spec")
    if isinstance(spec, dict):
        depends = spec.get("depends")
        if depends is None and "depends" in spec:
            spec["depends"] = []
        elif isinstance(depends, list):
            for i, dep in enumerate(depends):
                if isinstance(dep, str):
                    warn(
                        f"bare-string dependency {dep!r} normalized to {{blueprint: {dep}, version: '*'}}",
                        f"spec.depends[{i}]",
                    )
                    depends[i] = dep = {"blueprint": dep, "version": "*"}
                if (
                    isinstance(dep, dict)
                    and isinstance(dep.get("blueprint"), str)
                    and not dep["blueprint"].startswith("bp-")
                ):
                    warn(
                        f"dependency {dep['blueprint']!r} normalized to 'bp-{dep['blueprint']}'",
                        f"spec.depends[{i}].blueprint",
                    )
                    dep["blueprint"] = f"bp-{dep['blueprint']}"
        manifests = spec.get("manifests")
        if isinstance(manifests, dict) and "chart" in manifests:
            chart = manifests.pop("chart")
            if "source" not in manifests:
                manifests["source"] = {"kind": "HelmChart", "ref": chart}
                warn(
                    f"manifests.chart {chart!r} normalized to "
                    f"manifests.source {{kind: HelmChart, ref: {chart}}}",
                    "spec.manifests.chart",
                )
            else:
                warn("manifests.chart ignored because manifests.source is set", "spec.manifests.chart")
        card = spec.get("card")
        if (
            isinstance(card, dict)
            and not (card.get("summary") or card.get("tagline"))
            and card.get("description")
        ):
            card["summary"] = card["description"]
            warn("card has no summary/tagline; using card.description", "spec.card.summary")
        if "visibility" not in spec:
            warn("visibility not set; defaulting to listed", "spec.visibility")
        if isinstance(card, dict) and card.get("category") == COMPOSITE_CATEGORY and "manifests" in spec:
            spec.pop("manifests")
            warn("a composite Blueprint carries no manifests; dropped", "spec.manifests")
    return parse_blueprint(data, source=source), warnings
