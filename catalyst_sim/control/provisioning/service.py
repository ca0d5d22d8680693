"""The provisioning service: InstallPlan and one Gitea repo per new Application (R-PROV-01..04).

The pipeline follows R-PROV-01: catalog-svc flattens the Blueprint tree (with the user's "use an
existing Application" choices as bindings), every node's config is validated against its
configSchema, the InstallPlan lists the new Applications and the bindings, and only then are repos
created — each with ``develop``, ``staging`` and ``main`` holding the initial manifests and the
Kustomization ``dependsOn`` edges. The plan is all-or-nothing (R-PROV-03): if any repo fails, the
repos already created for this plan are deleted again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from catalyst_sim.clients.gitea import GiteaClient, GiteaError
from catalyst_sim.control.catalog import BlueprintRegistry, ExistingApplication, flatten
from catalyst_sim.control.config_store import ConfigStore
from catalyst_sim.control.provisioning.manifests import AppManifestInput, render_app_repo
from catalyst_sim.model import naming
from catalyst_sim.model.base import API_VERSION, CatalystError, ConflictError, Problem
from catalyst_sim.model.loader import parse_object
from catalyst_sim.model.resources import Application, Environment

BRANCHES = ("main", "develop", "staging")  # main first: the others branch from it
REPO_WORKERS = 4  # repos created at once by one install (a bundle has 5 Apps)


@dataclass
class PlannedApplication:
    name: str
    blueprint: str
    version: str
    alias: str | None
    new: bool
    depends_on: list[str]
    config: dict[str, Any]
    dependencies: dict[str, str]  # alias -> App name, exposed to manifests (R-DEP-04)
    repository: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "blueprint": self.blueprint, "version": self.version, "alias": self.alias,
                "new": self.new, "dependsOn": self.depends_on, "repository": self.repository}


@dataclass
class InstallPlan:
    organization: str
    environment: str
    root: str
    applications: list[PlannedApplication]
    bindings: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def new_applications(self) -> list[PlannedApplication]:
        return [app for app in self.applications if app.new]

    def as_dict(self) -> dict[str, Any]:
        return {"organization": self.organization, "environment": self.environment, "root": self.root,
                "applications": [a.as_dict() for a in self.applications], "bindings": self.bindings,
                "warnings": self.warnings}


@dataclass(frozen=True)
class InstallRequest:
    name: str
    blueprint: str
    version: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    bindings: dict[str, str] = field(default_factory=dict)
    overlay: str = "small"


class ProvisioningService:
    def __init__(self, *, sovereign: str, store: ConfigStore, gitea: GiteaClient, catalog: BlueprintRegistry,
                 on_installed: Callable[[str], None] | None = None) -> None:
        self.sovereign = sovereign
        self.on_installed = on_installed
        self.store = store
        self.gitea = gitea
        self.catalog = catalog
        self._lock = threading.Lock()

    # -- reads ----------------------------------------------------------------------------------
    def applications(self, organization: str, environment: str | None = None) -> list[Application]:
        return [a for a in self.store.list("Application") if isinstance(a, Application)
                and a.spec.environment.rsplit("-", 1)[0] == organization
                and (environment is None or a.spec.environment == environment)]

    def _existing(self, organization: str) -> list[ExistingApplication]:
        return [ExistingApplication(name=a.metadata.name, blueprint=a.spec.blueprint.name,
                                    version=a.spec.blueprint.version, environment=a.spec.environment)
                for a in self.applications(organization)]

    # -- the pipeline ---------------------------------------------------------------------------
    def plan(self, environment: Environment, request: InstallRequest) -> InstallPlan:
        org = environment.spec.organization
        naming.validate_application_name(request.name, field="name")
        existing = self._existing(org)
        if any(a.name == request.name for a in existing):
            raise ConflictError(f"an Application named {request.name!r} already exists in Organization {org!r} "
                                f"(one repo per Application, R-APP-02)", object=f"Application/{request.name}",
                                field="name")
        flat = flatten(self.catalog, request.blueprint, request.version or "*", app_name=request.name,
                       config=request.config, existing=existing, bindings=request.bindings,
                       organization=org, environment=environment.metadata.name)
        clashes = [n.name for n in flat.new_apps if any(e.name == n.name for e in existing)]
        if clashes:
            raise CatalystError([Problem(f"an Application named {name!r} already exists in {org!r}; bind the "
                                         f"dependency to it or choose another name", field="bindings",
                                         object=f"Application/{name}") for name in clashes], code="Conflict")
        applications = [
            PlannedApplication(name=node.name, blueprint=node.blueprint, version=node.version, alias=node.alias,
                               new=node.new, depends_on=list(node.depends_on), config=node.config,
                               dependencies=dict(node.dependencies), repository=f"{org}/{node.name}")
            for node in flat.nodes
        ]
        bindings = [{"for": parent, "alias": node.alias or node.name, "application": node.name}
                    for node in flat.nodes if not node.new for parent in node.parent_names]
        return InstallPlan(organization=org, environment=environment.metadata.name, root=request.blueprint,
                           applications=applications, bindings=bindings, warnings=list(flat.warnings))

    def install(self, environment: Environment, request: InstallRequest, *, author: str) -> InstallPlan:
        with self._lock:  # one plan at a time: name checks and repo creation must not interleave
            plan = self.plan(environment, request)
            created: list[str] = []
            try:
                created = self._create_repos(plan, request, author=author)
                self.store.put(*[self._application_cr(plan, app, request) for app in plan.applications if app.new],
                               message=f"Install {request.name} from {request.blueprint} into {plan.environment}")
            except Exception:
                for name in reversed(created):
                    # Best effort: the original error is what the caller must see.
                    with contextlib.suppress(GiteaError):
                        self.gitea.delete_repo(plan.organization, name)
                raise
        if self.on_installed is not None:
            self.on_installed(plan.organization)  # every vcluster of the Org gains the new repos (R-ENVC-02)
        return plan

    def _create_repos(self, plan: InstallPlan, request: InstallRequest, *, author: str) -> list[str]:
        """Create every new App's repo, side by side: each is a few Gitea calls that wait on git.

        All are attempted; when any fails, the ones created are deleted again and the first
        failure (in plan order) is raised, as the sequential version did."""
        apps = plan.new_applications
        with ThreadPoolExecutor(max_workers=max(1, min(REPO_WORKERS, len(apps))),
                                thread_name_prefix="catalyst-sim:provisioning") as pool:
            futures = [pool.submit(self._create_repo, plan, app, request, author=author) for app in apps]
        failures = [f.exception() for f in futures if f.exception() is not None]
        created = [app.name for app, f in zip(apps, futures, strict=True) if f.exception() is None]
        if failures:
            for name in reversed(created):
                with contextlib.suppress(GiteaError):  # best effort: the original error is what the caller sees
                    self.gitea.delete_repo(plan.organization, name)
            raise failures[0]  # type: ignore[misc]
        return created

    def _create_repo(self, plan: InstallPlan, app: PlannedApplication, request: InstallRequest, *,
                     author: str) -> None:
        blueprint = self.catalog.get(app.blueprint, app.version)
        files = render_app_repo(AppManifestInput(
            sovereign=self.sovereign, organization=plan.organization, app=app.name, blueprint=app.blueprint,
            version=app.version, config=app.config, config_schema=blueprint.spec.configSchema or {},
            depends_on=tuple(app.depends_on), dependencies=app.dependencies,
            overlay=request.overlay if app.name == request.name else "small",
            overlay_values=blueprint.overlay_values(),
        ))
        self.gitea.create_repo(plan.organization, app.name, private=True,
                               description=f"{app.blueprint}@{app.version} — Catalyst Application")
        self.gitea.commit_files(plan.organization, app.name, "main", files,
                                message=f"Install {app.name} from {app.blueprint}@{app.version}",
                                author=author)
        for branch in BRANCHES[1:]:
            self.gitea.create_branch(plan.organization, app.name, branch, source="main")

    def _application_cr(self, plan: InstallPlan, app: PlannedApplication, request: InstallRequest) -> Application:
        return parse_object({
            "apiVersion": API_VERSION, "kind": "Application",
            "metadata": {"name": app.name, "namespace": plan.environment,
                         "labels": {"openova.io/organization": plan.organization}},
            "spec": {
                "environment": plan.environment,
                "blueprint": {"name": app.blueprint, "version": app.version},
                "config": app.config,
                "overlay": request.overlay if app.name == request.name else "small",
                "bindings": dict(app.dependencies),
            },
        }, source="provisioning", expect=Application)
