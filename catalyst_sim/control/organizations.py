"""Onboarding an Organization (R-ORG-01..03, R-NAME-05, R-NAME-13).

An Organization is a CR in catalyst-config plus a Gitea Org ``{org}`` holding ``shared-blueprints``.
No vcluster is created here: vclusters appear with the Organization's first Environment (R-ORG-02).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from catalyst_sim.clients.gitea import GiteaClient, GiteaError
from catalyst_sim.control.config_store import ConfigStore
from catalyst_sim.model import naming
from catalyst_sim.model.base import API_VERSION, ConflictError
from catalyst_sim.model.loader import parse_object
from catalyst_sim.model.resources import Organization

SHARED_BLUEPRINTS = "shared-blueprints"


class OrganizationService:
    def __init__(self, store: ConfigStore, gitea: GiteaClient,
                 on_created: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.gitea = gitea
        self.on_created = on_created
        self._lock = threading.Lock()

    def create(self, name: str, contact: str, plan: str, labels: dict[str, str] | None = None) -> Organization:
        naming.validate_organization_name(name, field="metadata.name")
        organization = parse_object({"apiVersion": API_VERSION, "kind": "Organization",
                                     "metadata": {"name": name, "labels": labels or {}},
                                     "spec": {"contact": contact, "plan": plan}},
                                    source="Catalyst API", expect=Organization)
        with self._lock:
            if self.store.find("Organization", name) is not None:
                raise ConflictError(f"Organization {name!r} already exists", object=f"Organization/{name}",
                                    field="metadata.name")
            self._materialize(name)
            self.store.put(organization, message=f"Onboard Organization {name}")
        if self.on_created is not None:
            self.on_created(name)
        return organization

    def _materialize(self, name: str) -> None:
        """The Gitea side of an Organization; undone if any part fails so nothing is half-made."""
        created_org = False
        try:
            self.gitea.create_org(name, description=f"Catalyst Organization {name}")
            created_org = True
            self.gitea.create_repo(name, SHARED_BLUEPRINTS, private=True,
                                   description="Organization-private Blueprints (R-GIT-05)")
            self.gitea.commit_files(name, SHARED_BLUEPRINTS, "main",
                                    {"README.md": f"# {name} shared Blueprints\n"},
                                    message="Initialize shared-blueprints")
        except GiteaError as exc:
            if created_org:
                self.gitea.delete_org(name, cascade=True)
            if exc.status in (409, 422):
                raise ConflictError(f"a Gitea Org {name!r} already exists", object=f"Organization/{name}",
                                    field="metadata.name") from exc
            raise

    def get(self, name: str) -> Organization:
        obj = self.store.get("Organization", name)
        assert isinstance(obj, Organization)
        return obj

    def list(self) -> list[Organization]:
        return [o for o in self.store.list("Organization") if isinstance(o, Organization)]
