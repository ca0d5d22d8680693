"""Dependency flattening: a root Blueprint + config -> the ordered DAG of Applications to install.

catalog-svc's job in step 1 of the install pipeline (R-PROV-01, R-CAT-03/04, R-DEP-01..05,
ARCHITECTURE §9). The output feeds the provisioning service's InstallPlan: which Apps are new (one
Gitea repo each), which dependencies bind to existing Apps, and the ``dependsOn`` edges Flux uses.

How each dependency becomes an Application:

1. **Binding** — the user picked an existing App for this dependency (``bindings`` keyed by the
   dependency *path*, e.g. ``db`` or ``erpnext/db``, or by a bare alias matching every dependency with
   that alias). The App must exist in the Organization, run the same Blueprint, and its version must
   satisfy the range. It is not expanded further (its own dependencies already exist).
2. **Shared by a bundle** — inside a composite Blueprint (``card.category: composite``, R-CAT-04),
   a dependency on a Blueprint the bundle itself provides binds to the bundle's App. Ranges of all
   parents are intersected (D-07); an empty intersection fails naming both parents. Requested values
   are merged: lists are unioned, mappings merged, and a conflicting scalar fails naming both parents,
   unless the bundle itself set it (the bundle's value wins, with a warning).
3. **Dedicated** — otherwise a new App named ``{parent-app}-{blueprint-without-bp-}``
   (R-NAME-21, e.g. ``marketing-site-postgres``), highest version in range (R-DEP-02).

A composite Blueprint does not become an App. Its direct dependencies do: a *backing service* (a
direct dependency whose Blueprint another direct dependency may need, judged statically from the
registry so names never depend on config) is named ``shared-{x}`` (R-NAME-21: shared-postgres,
shared-redis); every other one (a *component*) is named by its alias (erpnext, woocommerce,
pharmacy-mail), or ``{x}`` without one. Bundle children are processed requesters-first so a shared
App's version and config are final before its own dependencies are evaluated.

Each node's config is its parent's rendered ``values`` (D-06 templates over ``.config`` and
``.application``) with its own configSchema defaults applied *before* its ``when`` predicates are
evaluated (:func:`~catalyst_sim.control.provisioning.configschema.apply_defaults`), and is validated
against that schema (``validate=True``) so a bad install fails before anything is committed
(R-PROV-03). A false ``when`` skips the dependency (R-DEP-03); skipped ones are reported.

Reference dependencies (R-DEP-05): a config value whose schema says ``x-catalyst-ui-hint:
application-ref`` (e.g. ``postgres.ref`` in ``mode: external``) must name an existing App of the
filter's Blueprint; it becomes an edge to that App, exposed under the alias of the (skipped)
dependency on that Blueprint, so manifests read ``.values.dependencies.db`` in either mode.

Candidates (C-13): for every dependency the plan lists the Organization's existing Apps of that
Blueprint whose version satisfies the range — **Org scope** as in ARCHITECTURE §9 ("existing
bp-postgres Applications in this Org"), same-Environment ones first. A reference whose schema filter
says ``environment: current`` must additionally be in the current Environment when both are known
(BLUEPRINT-AUTHORING §4/§5.3).

App names (D-02, R-NAME-22) must be DNS-1123 labels of at most 63 characters, never
``shared-blueprints``, and unique in the Organization: a new App whose name is taken fails with a
hint to bind instead. (Implemented here rather than imported from ``model.naming`` so this module
stands alone.)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from catalyst_sim.control.catalog import expressions, versions
from catalyst_sim.control.catalog.registry import BlueprintRegistry
from catalyst_sim.control.provisioning.configschema import application_refs, apply_defaults, validate_config
from catalyst_sim.model.base import CatalystError, ConflictError, NotFoundError, Problem
from catalyst_sim.model.blueprint import Blueprint, Dependency

APP_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RESERVED_APP_NAMES = ("shared-blueprints",)
SHARED_PREFIX = "shared-"


def app_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an Application name (D-02), or ``None``."""
    if not isinstance(name, str) or not name:
        return "an Application name must be a non-empty string"
    if len(name) > 63:
        return f"Application name {name!r} is {len(name)} characters; at most 63 (DNS-1123 label)"
    if not APP_NAME_RE.match(name):
        return (
            f"Application name {name!r} is not a DNS-1123 label (lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit)"
        )
    if name in RESERVED_APP_NAMES:
        return f"Application name {name!r} is reserved"
    return None


# ---------------------------------------------------------------- public result types


@dataclass(frozen=True)
class ExistingApplication:
    """An App already in the Organization (from the projector's read model)."""

    name: str
    blueprint: str
    version: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class ParentEdge:
    """Why a node is in the plan: which parent asked for it, under which path/alias and range."""

    parent: str | None  # parent App name; None when the parent is a composite Blueprint (not an App)
    parent_blueprint: str
    path: str  # dependency path from the install root: "db", "erpnext/db"
    key: str  # the alias, or the Blueprint without "bp-"
    alias: str | None
    range: str  # the range this parent declared
    kind: str  # "dependency" | "component" | "reference"
    values: dict[str, Any] = field(default_factory=dict)  # rendered values this parent passed


@dataclass(frozen=True)
class SkippedDependency:
    """A dependency whose ``when`` was false (R-DEP-03)."""

    parent: str | None
    parent_blueprint: str
    path: str
    blueprint: str
    when: str | bool | None


@dataclass
class FlatNode:
    """One Application of the plan, new or bound to an existing one."""

    name: str
    blueprint: str
    version: str
    new: bool
    role: str  # "root" | "dependency" | "component" | "shared" | "existing"
    alias: str | None = None
    path: str = ""  # first dependency path that reached this node ("" for the root)
    range: str = "*"  # effective range (the intersection of every parent's, D-07)
    config: dict[str, Any] = field(default_factory=dict)  # rendered + defaulted (new Apps only)
    parents: list[ParentEdge] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)  # App names, for Kustomization dependsOn
    dependencies: dict[str, str] = field(default_factory=dict)  # alias/key -> App name (R-DEP-04)
    candidates: list[ExistingApplication] = field(default_factory=list)  # C-13, Org scope
    environment: str | None = None  # of an existing App
    definition: Blueprint | None = field(default=None, repr=False, compare=False)

    @property
    def app_name(self) -> str:
        """Alias of :attr:`name` (the Application, i.e. repo, namespace and Kustomization name)."""
        return self.name

    @property
    def parent_names(self) -> list[str]:
        """Names of the parent Apps (composite parents, which are not Apps, are left out)."""
        return list(dict.fromkeys(e.parent for e in self.parents if e.parent is not None))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("definition")
        return data


@dataclass
class FlatPlan:
    """The flattened install: nodes in dependency order (dependencies first)."""

    application: str  # the name the user installed under
    blueprint: str
    version: str
    composite: bool
    nodes: list[FlatNode]
    skipped: list[SkippedDependency] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def node(self, name: str) -> FlatNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def root(self) -> FlatNode | None:
        """The root App, or ``None`` for a composite (which is not an App)."""
        return next((n for n in self.nodes if n.role == "root"), None)

    @property
    def new_apps(self) -> list[FlatNode]:
        return [n for n in self.nodes if n.new]

    @property
    def bound_apps(self) -> list[FlatNode]:
        return [n for n in self.nodes if not n.new]

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def as_dict(self) -> dict[str, Any]:
        return {
            "application": self.application,
            "blueprint": self.blueprint,
            "version": self.version,
            "composite": self.composite,
            "nodes": [n.as_dict() for n in self.nodes],
            "skipped": [asdict(s) for s in self.skipped],
            "warnings": list(self.warnings),
        }


# ---------------------------------------------------------------- internals


@dataclass
class _Work:
    """A node under construction."""

    node: FlatNode
    bp_name: str
    range: versions.VersionRange
    constraints: list[tuple[str, str]]  # (parent label, declared range) for D-07 messages
    base: dict[str, Any]  # values before defaults (merged requests for shared nodes)
    origins: dict[tuple[str, ...], str]  # value path -> requester label (absent: set by the bundle)
    children: list[_Work] = field(default_factory=list)
    expanded: bool = False
    is_composite: bool = False


@dataclass
class _Request:
    parent: _Work | None  # None: the parent is a composite
    parent_label: str
    parent_blueprint: str
    path: str
    dep: Dependency
    values: dict[str, Any]
    kind: str


def _join(path: str, key: str) -> str:
    return f"{path}/{key}" if path else key


def _coerce_existing(item: Any) -> ExistingApplication:
    if isinstance(item, ExistingApplication):
        return item
    if isinstance(item, Mapping):
        bp = item.get("blueprint")
        version = item.get("version")
        if isinstance(bp, Mapping):  # D-05 shape: blueprint: {name, version}
            version = version or bp.get("version")
            bp = bp.get("name")
        return ExistingApplication(
            str(item["name"]), str(bp), None if version is None else str(version), item.get("environment")
        )
    name = getattr(item, "name", None)
    bp = getattr(item, "blueprint", None)
    if name and bp:
        return ExistingApplication(
            name, bp, getattr(item, "version", None), getattr(item, "environment", None)
        )
    raise TypeError(f"cannot read an existing Application from {item!r}")


class _Flattener:
    def __init__(
        self,
        registry: BlueprintRegistry,
        *,
        existing: Iterable[Any],
        bindings: Mapping[str, str],
        organization: str | None,
        environment: str | None,
        validate: bool,
    ) -> None:
        self.registry = registry
        self.organization = organization
        self.environment = environment
        self.validate = validate
        # One App repo is deployed to every Environment of the Org, so the read model may list an App
        # once per Environment; keep the entry of the current Environment when there is one.
        self.existing: dict[str, ExistingApplication] = {}
        for item in existing:
            app = _coerce_existing(item)
            kept = self.existing.get(app.name)
            if kept is None or (
                environment and app.environment == environment and kept.environment != environment
            ):
                self.existing[app.name] = app
        self.bindings = dict(bindings)
        self.used_bindings: set[str] = set()
        self.works: list[_Work] = []
        self.by_name: dict[str, _Work] = {}
        self.skipped: list[SkippedDependency] = []
        self.warnings: list[str] = []
        self.seen_paths: list[tuple[str, str]] = []  # (path, key) of every declared dependency
        self.top: list[_Work] = []
        self._reach_cache: dict[tuple[str, str], frozenset[str]] = {}

    # ------------------------------------------------------------ entry

    def run(
        self, blueprint: str, version: str | None, app_name: str, config: Mapping[str, Any] | None
    ) -> FlatPlan:
        try:
            root_bp = self.registry.resolve(blueprint, version, organization=self.organization)
        except CatalystError as err:
            raise self._wrap(err, f"installing {blueprint} {version}") from None
        problem = app_name_problem(app_name)
        if problem:
            raise CatalystError.single(problem, object=f"Application/{app_name}", field="name")
        cfg = dict(config or {})
        if root_bp.is_composite:
            bundle_config = self._config(root_bp, cfg, f"Application/{app_name} ({root_bp.name})")
            self._expand_composite(root_bp, app_name, bundle_config, "", [root_bp.name], [])
        else:
            if app_name in self.existing:
                other = self.existing[app_name]
                installed = f"{other.blueprint} {other.version}" if other.version else other.blueprint
                raise ConflictError(
                    f"Application {app_name!r} already exists in the Organization ({installed})",
                    object=f"Application/{app_name}",
                )
            work = self._new_work(app_name, root_bp, "root", None, "", versions.parse_range(version), [], cfg)
            work.node.config = self._config(root_bp, cfg, f"Application/{app_name}")
            self.top.append(work)
            self._expand(work, [root_bp.name], [])
        self._check_bindings()
        nodes = self._ordered()
        return FlatPlan(
            application=app_name,
            blueprint=root_bp.name,
            version=root_bp.version,
            composite=root_bp.is_composite,
            nodes=nodes,
            skipped=self.skipped,
            warnings=self.warnings,
        )

    # ------------------------------------------------------------ helpers

    def _wrap(self, err: CatalystError, context: str) -> CatalystError:
        problems = [
            Problem(message=f"{context}: {p.message}", field=p.field, object=p.object, source=p.source)
            for p in err.problems
        ]
        return CatalystError(problems, code=err.code)

    def _config(self, bp: Blueprint, values: Mapping[str, Any], obj: str) -> dict[str, Any]:
        if self.validate:
            return validate_config(bp.spec.configSchema, dict(values), object=obj)
        return apply_defaults(bp.spec.configSchema, dict(values))

    def _context(self, name: str, bp: Blueprint, config: Mapping[str, Any]) -> dict[str, Any]:
        application: dict[str, Any] = {"name": name, "blueprint": bp.name, "version": bp.version}
        if self.organization:
            application["organization"] = self.organization
        if self.environment:
            application["environment"] = self.environment
        return {"config": config, "application": application}

    def _new_work(
        self,
        name: str,
        bp: Blueprint,
        role: str,
        alias: str | None,
        path: str,
        rng: versions.VersionRange,
        constraints: list[tuple[str, str]],
        base: dict[str, Any],
    ) -> _Work:
        node = FlatNode(
            name=name,
            blueprint=bp.name,
            version=bp.version,
            new=True,
            role=role,
            alias=alias,
            path=path,
            range=rng.text,
            definition=bp,
        )
        work = _Work(node, bp.name, rng, constraints, base, {})
        self._register(work)
        return work

    def _register(self, work: _Work) -> None:
        name = work.node.name
        if work.node.new:
            problem = app_name_problem(name)
            if problem:
                raise CatalystError.single(
                    f"{problem} (default name for dependency {work.node.path!r} of {work.bp_name})",
                    object=f"Application/{name}",
                )
            if name in self.existing:
                other = self.existing[name]
                hint = (
                    f"bind dependency {work.node.path!r} to it"
                    if other.blueprint == work.bp_name
                    else "choose another name"
                )
                raise ConflictError(
                    f"Application {name!r} already exists in the Organization ({other.blueprint}); {hint}",
                    object=f"Application/{name}",
                )
        if name in self.by_name:
            raise ConflictError(
                f"two Applications of this install would both be named {name!r} "
                f"({self.by_name[name].bp_name} and {work.bp_name})",
                object=f"Application/{name}",
            )
        self.by_name[name] = work
        self.works.append(work)

    def _candidates(self, blueprint: str, rng: versions.VersionRange) -> list[ExistingApplication]:
        found = []
        for app in self.existing.values():
            if app.blueprint != blueprint:
                continue
            if app.version is not None and versions.is_version(app.version) and not rng.matches(app.version):
                continue
            found.append(app)
        here = self.environment
        return sorted(found, key=lambda a: (a.environment != here if here else False, a.name))

    def _label(self, work: _Work | None, fallback: str) -> str:
        return f"{work.node.name} ({work.bp_name})" if work is not None else fallback

    # ------------------------------------------------------------ expansion of a new App

    def _expand(self, work: _Work, stack: list[str], scopes: list[dict[str, _Work]]) -> None:
        bp = work.node.definition
        assert bp is not None
        ctx = self._context(work.node.name, bp, work.node.config)
        label = self._label(work, bp.name)
        for i, dep in enumerate(bp.spec.depends):
            path = _join(work.node.path, dep.key)
            self.seen_paths.append((path, dep.key))
            field_ = f"spec.depends[{i}]"
            try:
                active = expressions.evaluate_when(dep.when, ctx)
            except CatalystError as err:
                raise self._wrap(err, f"{label} dependency {path!r} when") from None
            if not active:
                self.skipped.append(SkippedDependency(work.node.name, bp.name, path, dep.blueprint, dep.when))
                continue
            try:
                values = expressions.render_template(dep.values, ctx)
            except CatalystError as err:
                raise CatalystError(
                    [
                        Problem(
                            message=f"{label} dependency {path!r} values: {p.message}",
                            field=f"{field_}.values",
                            object=bp.ref(),
                        )
                        for p in err.problems
                    ],
                    code=err.code,
                ) from None
            request = _Request(work, label, bp.name, path, dep, values, "dependency")
            child = self._satisfy(request, stack, scopes)
            self._link(work, child, request)
        self._references(work, bp, label)
        work.expanded = True

    def _references(self, work: _Work, bp: Blueprint, label: str) -> None:
        for ref in application_refs(bp.spec.configSchema, work.node.config):
            target = self.existing.get(ref.value)
            where = f"{label} config {ref.pointer}"
            if target is None:
                if ref.value in self.by_name and (
                    ref.blueprint is None or self.by_name[ref.value].bp_name == ref.blueprint
                ):
                    other = self.by_name[ref.value]
                    self._link(
                        work, other, self._ref_request(work, label, bp, ref.blueprint or other.bp_name)
                    )
                    continue
                pool = sorted(
                    a.name
                    for a in self.existing.values()
                    if ref.blueprint is None or a.blueprint == ref.blueprint
                )
                listing = ", ".join(pool) or "none"
                raise NotFoundError(
                    f"{where} names {ref.value!r}, which is not an existing Application in the "
                    f"Organization (existing {ref.blueprint or 'Applications'}: {listing})",
                    object=f"Application/{work.node.name}",
                    field=ref.pointer,
                )
            if ref.blueprint is not None and target.blueprint != ref.blueprint:
                raise CatalystError.single(
                    f"{where} names {ref.value!r}, which is a {target.blueprint} Application, "
                    f"not {ref.blueprint}",
                    object=f"Application/{work.node.name}",
                    field=ref.pointer,
                )
            if (
                ref.environment == "current"
                and self.environment
                and target.environment
                and target.environment != self.environment
            ):
                raise CatalystError.single(
                    f"{where} names {ref.value!r} in Environment {target.environment!r}; the "
                    f"schema requires the current Environment ({self.environment})",
                    object=f"Application/{work.node.name}",
                    field=ref.pointer,
                )
            request = self._ref_request(work, label, bp, target.blueprint)
            rng = versions.parse_range(request.dep.version)
            if target.version and versions.is_version(target.version) and not rng.matches(target.version):
                raise CatalystError.single(
                    f"{where} names {ref.value!r}, which runs {target.blueprint} "
                    f"{target.version}; {bp.name} needs {request.dep.version!r}",
                    object=f"Application/{work.node.name}",
                    field=ref.pointer,
                )
            existing = self._existing_work(target, request)
            self._link(work, existing, request)

    def _ref_request(self, work: _Work, label: str, bp: Blueprint, blueprint: str) -> _Request:
        declared = next((d for d in bp.spec.depends if d.blueprint == blueprint), None)
        dep = declared or Dependency(blueprint=blueprint)
        key = dep.key
        return _Request(work, label, bp.name, _join(work.node.path, key), dep, {}, "reference")

    def _link(self, parent: _Work, child: _Work, request: _Request) -> None:
        if child is parent:
            raise CatalystError.single(
                f"dependency cycle: {parent.node.name} ({parent.bp_name}) depends on itself "
                f"via {request.path!r}",
                code="DependencyCycle",
            )
        child.node.parents.append(
            ParentEdge(
                parent.node.name,
                parent.bp_name,
                request.path,
                request.dep.key,
                request.dep.alias,
                request.dep.version,
                request.kind,
                copy.deepcopy(request.values),
            )
        )
        if child not in parent.children:
            parent.children.append(child)
        if child.node.name not in parent.node.depends_on:
            parent.node.depends_on.append(child.node.name)
        parent.node.dependencies.setdefault(request.dep.key, child.node.name)

    # ------------------------------------------------------------ one dependency

    def _binding_for(self, path: str, key: str) -> str | None:
        if path in self.bindings:
            self.used_bindings.add(path)
            return self.bindings[path]
        if key in self.bindings:
            self.used_bindings.add(key)
            return self.bindings[key]
        return None

    def _existing_work(self, app: ExistingApplication, request: _Request) -> _Work:
        work = self.by_name.get(app.name)
        if work is not None:
            return work
        try:
            definition = (
                self.registry.get(app.blueprint, app.version, organization=self.organization)
                if (app.version and versions.is_version(app.version))
                else None
            )
        except CatalystError:
            definition = None
        node = FlatNode(
            name=app.name,
            blueprint=app.blueprint,
            version=app.version or "",
            new=False,
            role="existing",
            alias=request.dep.alias,
            path=request.path,
            range=request.dep.version,
            environment=app.environment,
            definition=definition,
        )
        work = _Work(
            node,
            app.blueprint,
            versions.parse_range(request.dep.version),
            [],
            {},
            {},
            expanded=True,
        )
        self.by_name[app.name] = work
        self.works.append(work)
        return work

    def _bind(self, request: _Request, target_name: str) -> _Work:
        dep = request.dep
        where = f"{request.parent_label} dependency {request.path!r} ({dep.blueprint})"
        app = self.existing.get(target_name)
        if app is None:
            listing = (
                ", ".join(a.name for a in self._candidates(dep.blueprint, versions.parse_range("*")))
                or "none"
            )
            raise NotFoundError(
                f"{where} is bound to {target_name!r}, which is not an existing Application in the "
                f"Organization (existing {dep.blueprint}: {listing})",
                object=f"Application/{target_name}",
            )
        if app.blueprint != dep.blueprint:
            raise CatalystError.single(
                f"{where} is bound to {target_name!r}, which is a {app.blueprint} Application, "
                f"not {dep.blueprint}",
                object=f"Application/{target_name}",
                code="Conflict",
            )
        rng = versions.parse_range(dep.version)
        if app.version and versions.is_version(app.version) and not rng.matches(app.version):
            raise CatalystError.single(
                f"{where} is bound to {target_name!r}, which runs {app.blueprint} {app.version}; "
                f"the dependency needs {dep.version!r} ({rng.describe()})",
                object=f"Application/{target_name}",
                code="Unsatisfiable",
            )
        work = self._existing_work(app, request)
        self._constrain(work, request)
        return work

    def _constrain(self, work: _Work, request: _Request) -> None:
        """Record one more parent's range on ``work`` (D-07 intersection); fails when it empties."""
        dep = request.dep
        rng = versions.parse_range(dep.version)
        if not work.constraints:
            work.range = rng
        else:
            narrowed = work.range.intersect(rng)
            if narrowed.is_empty:
                parents = " and ".join(f"{who} ({text!r})" for who, text in work.constraints)
                raise CatalystError.single(
                    f"{dep.blueprint} is shared as {work.node.name!r}, but the version ranges "
                    f"of {parents} and {request.parent_label} ({dep.version!r}) do not "
                    f"intersect (D-07)",
                    object=f"Blueprint/{request.parent_blueprint}",
                    field=request.path,
                    code="Unsatisfiable",
                )
            work.range = narrowed
        work.constraints.append((request.parent_label, dep.version))
        work.node.range = dep.version if len(work.constraints) == 1 else work.range.describe()
        work.node.candidates = self._candidates(work.bp_name, work.range)

    def _satisfy(self, request: _Request, stack: list[str], scopes: list[dict[str, _Work]]) -> _Work:
        dep = request.dep
        if dep.blueprint in stack:
            cycle = [*stack[stack.index(dep.blueprint) :], dep.blueprint]
            raise CatalystError.single(
                f"dependency cycle: {' -> '.join(cycle)} (at {request.path!r} of {request.parent_label})",
                object=f"Blueprint/{request.parent_blueprint}",
                code="DependencyCycle",
            )
        bound = self._binding_for(request.path, dep.key)
        if bound is not None:
            return self._bind(request, bound)
        for scope in reversed(scopes):
            provider = scope.get(dep.blueprint)
            if provider is not None and provider is not request.parent:
                self._request_shared(provider, request)
                return provider
        try:
            bp = self.registry.resolve(dep.blueprint, dep.version, organization=self.organization)
        except CatalystError as err:
            raise self._wrap(err, f"{request.parent_label} dependency {request.path!r}") from None
        if bp.is_composite:
            raise CatalystError.single(
                f"{request.parent_label} dependency {request.path!r}: {bp.name} is a composite "
                f"Blueprint; a bundle can only be installed directly or inside another bundle",
                object=f"Blueprint/{request.parent_blueprint}",
            )
        assert request.parent is not None
        name = f"{request.parent.node.name}-{bp.short_name}"
        rng = versions.parse_range(dep.version)
        work = self._new_work(
            name,
            bp,
            "dependency",
            dep.alias,
            request.path,
            rng,
            [(request.parent_label, dep.version)],
            dict(request.values),
        )
        work.node.config = self._config(bp, request.values, f"Application/{name}")
        work.node.candidates = self._candidates(bp.name, rng)
        self._expand(work, [*stack, bp.name], scopes)
        return work

    # ------------------------------------------------------------ shared services (D-07)

    def _request_shared(self, provider: _Work, request: _Request) -> None:
        dep = request.dep
        if not provider.node.new:  # bundle service bound to an existing App
            rng = versions.parse_range(dep.version)
            version = provider.node.version
            if version and versions.is_version(version) and not rng.matches(version):
                raise CatalystError.single(
                    f"{request.parent_label} dependency {request.path!r} needs {dep.blueprint} "
                    f"{dep.version!r}, but the bundle binds it to {provider.node.name!r} "
                    f"({version})",
                    object=f"Blueprint/{request.parent_blueprint}",
                    code="Unsatisfiable",
                )
            self._constrain(provider, request)
            return
        self._constrain(provider, request)
        new_range = provider.range
        self._merge(provider, provider.base, request.values, (), request.parent_label)
        if provider.expanded:
            if not new_range.matches(provider.node.version):
                raise CatalystError.single(
                    f"{request.parent_label} needs {dep.blueprint} {dep.version!r}, but the "
                    f"shared {provider.node.name!r} already resolved to "
                    f"{provider.node.version}",
                    object=f"Blueprint/{request.parent_blueprint}",
                    code="Unsatisfiable",
                )
            assert provider.node.definition is not None
            provider.node.config = self._config(
                provider.node.definition, provider.base, f"Application/{provider.node.name}"
            )
            self.warnings.append(
                f"{request.parent_label} asked {provider.node.name!r} for values after it was "
                f"planned; its config was updated but its dependencies were not re-evaluated"
            )

    def _merge(
        self,
        provider: _Work,
        target: dict[str, Any],
        incoming: Mapping[str, Any],
        at: tuple[str, ...],
        requester: str,
    ) -> None:
        for key, value in incoming.items():
            here = (*at, str(key))
            if key not in target:
                target[key] = copy.deepcopy(value)
                provider.origins[here] = requester
                continue
            current = target[key]
            if isinstance(current, dict) and isinstance(value, Mapping):
                self._merge(provider, current, value, here, requester)
            elif isinstance(current, list) and isinstance(value, list):
                for item in value:
                    if item not in current:
                        current.append(copy.deepcopy(item))
            elif current != value:
                owner = provider.origins.get(here)
                dotted = ".".join(here)
                if owner is None:
                    self.warnings.append(
                        f"{requester} asks {provider.node.name!r} for {dotted}={value!r}; the bundle "
                        f"sets {current!r}, which is kept"
                    )
                else:
                    raise CatalystError.single(
                        f"{owner} and {requester} ask the shared {provider.node.name!r} for "
                        f"conflicting values at {dotted}: {current!r} vs {value!r}",
                        object=f"Application/{provider.node.name}",
                        field=dotted,
                        code="Conflict",
                    )

    # ------------------------------------------------------------ composites (R-CAT-04)

    def _reach(self, blueprint: str, rng: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
        """Every Blueprint ``blueprint`` (any version in ``rng``) may depend on, transitively, ignoring
        ``when``: the static view used to name and order a bundle's children."""
        key = (blueprint, rng)
        if key in self._reach_cache:
            return self._reach_cache[key]
        out: set[str] = set()
        try:
            available = self.registry.versions(blueprint, organization=self.organization)
            parsed = versions.parse_range(rng)
        except CatalystError:
            return frozenset()
        for v in available:
            if not parsed.matches(v):
                continue
            bp = self.registry.get(blueprint, v, organization=self.organization)
            for dep in bp.spec.depends:
                out.add(dep.blueprint)
                if dep.blueprint not in seen and dep.blueprint != blueprint:
                    out |= self._reach(dep.blueprint, dep.version, seen | {blueprint})
        result = frozenset(out)
        self._reach_cache[key] = result
        return result

    def _expand_composite(
        self,
        bundle: Blueprint,
        install_name: str,
        config: dict[str, Any],
        path: str,
        stack: list[str],
        scopes: list[dict[str, _Work]],
    ) -> list[_Work]:
        ctx = self._context(install_name, bundle, config)
        label = bundle.name
        active: list[tuple[int, Dependency, str, dict[str, Any]]] = []
        for i, dep in enumerate(bundle.spec.depends):
            child_path = _join(path, dep.key)
            self.seen_paths.append((child_path, dep.key))
            try:
                on = expressions.evaluate_when(dep.when, ctx)
                values = expressions.render_template(dep.values, ctx) if on else {}
            except CatalystError as err:
                raise self._wrap(err, f"{label} dependency {child_path!r}") from None
            if not on:
                self.skipped.append(SkippedDependency(None, label, child_path, dep.blueprint, dep.when))
                continue
            if dep.blueprint in stack:
                cycle = [*stack[stack.index(dep.blueprint) :], dep.blueprint]
                raise CatalystError.single(
                    f"dependency cycle: {' -> '.join(cycle)} (at {child_path!r} of {label})",
                    object=f"Blueprint/{label}",
                    code="DependencyCycle",
                )
            active.append((i, dep, child_path, values))

        reach = {i: self._reach(dep.blueprint, dep.version) for i, dep, _, _ in active}
        counts: dict[str, int] = {}
        for _, dep, _, _ in active:
            counts[dep.blueprint] = counts.get(dep.blueprint, 0) + 1
        shared = {
            i
            for i, dep, _, _ in active
            if any(dep.blueprint in reach[j] for j, _, _, _ in active if j != i)
            and counts[dep.blueprint] == 1
        }

        scope: dict[str, _Work] = {}
        children: dict[int, _Work] = {}
        for i, dep, child_path, values in active:
            request = _Request(None, label, label, child_path, dep, values, "component")
            edge = ParentEdge(
                None, label, child_path, dep.key, dep.alias, dep.version, "component", copy.deepcopy(values)
            )
            bound = self._binding_for(child_path, dep.key)
            if bound is not None:
                work = self._bind(request, bound)
            else:
                try:
                    candidate = self.registry.resolve(
                        dep.blueprint, dep.version, organization=self.organization
                    )
                except CatalystError as err:
                    raise self._wrap(err, f"{label} dependency {child_path!r}") from None
                role = "shared" if i in shared else "component"
                if candidate.is_composite:
                    node = FlatNode(
                        name=f"{install_name}/{dep.key}",
                        blueprint=candidate.name,
                        version=candidate.version,
                        new=True,
                        role="composite",
                        alias=dep.alias,
                        path=child_path,
                        definition=candidate,
                    )
                    work = _Work(
                        node,
                        candidate.name,
                        versions.parse_range(dep.version),
                        [(label, dep.version)],
                        dict(values),
                        {},
                        is_composite=True,
                    )
                else:
                    if role == "shared":
                        name = f"{SHARED_PREFIX}{candidate.short_name}"
                    else:
                        name = dep.alias or candidate.short_name
                    work = self._new_work(
                        name,
                        candidate,
                        role,
                        dep.alias,
                        child_path,
                        versions.parse_range(dep.version),
                        [(label, dep.version)],
                        dict(values),
                    )
            work.node.parents.append(edge)
            if counts[dep.blueprint] > 1:
                self.warnings.append(
                    f"{label} bundles {dep.blueprint} more than once; its children get dedicated "
                    f"{dep.blueprint} Apps instead of a shared one"
                )
            elif not work.is_composite:
                scope[dep.blueprint] = work
            children[i] = work
            if not path:
                self.top.append(work)

        for i in self._requesters_first(active, reach):
            work = children[i]
            if work.expanded or not work.node.new:
                continue
            child_scopes = [*scopes, scope]
            if work.is_composite:
                assert work.node.definition is not None
                inner_config = self._config(
                    work.node.definition, work.base, f"{label} component {work.node.path!r}"
                )
                work.children = self._expand_composite(
                    work.node.definition,
                    install_name,
                    inner_config,
                    work.node.path,
                    [*stack, work.bp_name],
                    child_scopes,
                )
                work.expanded = True
                continue
            bp = (
                self.registry.resolve(work.bp_name, work.range, organization=self.organization)
                if (not work.range.is_empty)
                else None
            )
            if bp is None:  # pragma: no cover - emptiness is caught when intersecting
                raise CatalystError.single(f"no version of {work.bp_name} satisfies every parent")
            work.node.definition = bp
            work.node.version = bp.version
            work.node.config = self._config(bp, work.base, f"Application/{work.node.name}")
            work.node.candidates = self._candidates(bp.name, work.range)
            self._expand(work, [*stack, bp.name], child_scopes)
        return list(children.values())

    @staticmethod
    def _requesters_first(
        active: list[tuple[int, Dependency, str, dict[str, Any]]], reach: dict[int, frozenset[str]]
    ) -> list[int]:
        """Order bundle children so that anything that may request a sibling comes before it."""
        indexes = [i for i, _, _, _ in active]
        blueprint = {i: dep.blueprint for i, dep, _, _ in active}
        before: dict[int, set[int]] = {i: set() for i in indexes}  # i must wait for these
        for i in indexes:
            for j in indexes:
                if i != j and blueprint[i] in reach[j]:
                    before[i].add(j)
        order: list[int] = []
        remaining = list(indexes)
        while remaining:
            ready = [i for i in remaining if not (before[i] & set(remaining))]
            pick = ready[0] if ready else remaining[0]  # a static cycle: fall back to declaration order
            order.append(pick)
            remaining.remove(pick)
        return order

    # ------------------------------------------------------------ bindings and order

    def _check_bindings(self) -> None:
        unused = [k for k in self.bindings if k not in self.used_bindings]
        if not unused:
            return
        skipped = {s.path for s in self.skipped} | {s.path.rsplit("/", 1)[-1] for s in self.skipped}
        known = sorted({p for p, _ in self.seen_paths})
        problems = []
        for key in unused:
            if key in skipped:
                self.warnings.append(
                    f"binding {key!r} was not used: that dependency is skipped by its when-predicate"
                )
            else:
                problems.append(
                    Problem(
                        message=f"binding {key!r} matches no dependency of this install "
                        f"(dependency paths: {', '.join(known) or 'none'})",
                        field=f"bindings.{key}",
                    )
                )
        if problems:
            raise CatalystError(problems, code="Invalid")

    def _ordered(self) -> list[FlatNode]:
        """Dependencies first (DFS post-order from the install's top-level Apps in declaration order);
        a cycle through bindings or shared services is reported with its path."""
        order: list[FlatNode] = []
        state: dict[int, int] = {}  # 1 visiting, 2 done
        trail: list[_Work] = []

        def visit(work: _Work) -> None:
            mark = state.get(id(work))
            if mark == 2:
                return
            if mark == 1:
                start = trail.index(work)
                cycle = " -> ".join(f"{w.node.name} ({w.bp_name})" for w in [*trail[start:], work])
                raise CatalystError.single(f"dependency cycle: {cycle}", code="DependencyCycle")
            state[id(work)] = 1
            trail.append(work)
            for child in work.children:
                visit(child)
            trail.pop()
            state[id(work)] = 2
            if not work.is_composite:
                order.append(work.node)

        for work in [*self.top, *self.works]:
            visit(work)
        return order


def flatten(
    registry: BlueprintRegistry,
    blueprint: str,
    version: str | None = "*",
    *,
    app_name: str,
    config: Mapping[str, Any] | None = None,
    existing: Iterable[Any] = (),
    bindings: Mapping[str, str] | None = None,
    organization: str | None = None,
    environment: str | None = None,
    validate: bool = True,
) -> FlatPlan:
    """Flatten ``blueprint`` (highest version in ``version``) installed as ``app_name``.

    ``existing``: the Organization's Applications (:class:`ExistingApplication`, or mappings with
    ``name``, ``blueprint`` (a name or ``{name, version}``), ``version``, ``environment``).
    ``bindings``: ``{dependency path or alias: existing App name}``. ``organization`` scopes
    private-Blueprint visibility (R-BP-03) and is exposed as ``.application.organization``;
    ``environment`` orders candidates and enforces ``environment: current`` reference filters.
    ``validate`` validates every new App's config against its configSchema (defaults are always
    applied). Raises :class:`CatalystError` (codes ``NotFound``, ``Unsatisfiable``, ``DependencyCycle``,
    ``Conflict``, ``Invalid``, ``InvalidExpression``) naming the Blueprint and dependency path.
    """
    flattener = _Flattener(
        registry,
        existing=existing,
        bindings=bindings or {},
        organization=organization,
        environment=environment,
        validate=validate,
    )
    return flattener.run(blueprint, version, app_name, config)
