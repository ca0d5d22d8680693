"""environment-controller (R-ENV, R-ENVC, R-NAME-07).

Creating an Environment validates ``{org}-{env_type}``, enforces one Environment per (Org,
env_type) (R-ENV-04) and stores the CR. It never creates a Gitea repo: App repos already exist and
are indexed by branch (R-ENV-03).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from catalyst_sim.control.config_store import ConfigStore
from catalyst_sim.model import naming
from catalyst_sim.model.base import API_VERSION, CatalystError, ConflictError, NotFoundError
from catalyst_sim.model.loader import parse_object
from catalyst_sim.model.resources import (
    Environment,
    Placement,
    Sovereign,
    problems_for_environment_placement,
)


class EnvironmentService:
    def __init__(self, store: ConfigStore, sovereign: Sovereign,
                 on_created: Callable[[Environment], None] | None = None) -> None:
        self.store = store
        self.sovereign = sovereign
        self.on_created = on_created
        self._lock = threading.Lock()

    def create(self, organization: str, env_type: str, *, name: str | None = None,
               placement: Placement | None = None) -> Environment:
        if self.store.find("Organization", organization) is None:
            raise NotFoundError(f"Organization {organization!r} does not exist", object=f"Organization/{organization}")
        naming.validate_env_type(env_type, field="spec.envType")
        placement = placement or Placement.default_for(self.sovereign)
        environment = parse_object({
            "apiVersion": API_VERSION, "kind": "Environment",
            "metadata": {"name": name or naming.environment_name(organization, env_type)},
            "spec": {"organization": organization, "envType": env_type,
                     "placement": placement.model_dump(mode="json")},
        }, source="Catalyst API", expect=Environment)
        if problems := problems_for_environment_placement(environment, self.sovereign):
            raise CatalystError(problems)
        with self._lock:
            if self.store.find("Environment", environment.metadata.name) is not None:
                raise ConflictError(
                    f"Environment {environment.metadata.name!r} already exists: an Organization has at most one "
                    f"Environment per env_type (R-ENV-04)", object=f"Environment/{environment.metadata.name}",
                    field="spec.envType")
            self.store.put(environment, message=f"Create Environment {environment.metadata.name}")
        if self.on_created is not None:
            self.on_created(environment)  # the environment-controller realizes it (R-ENVC-01)
        return environment

    def get(self, name: str) -> Environment:
        obj = self.store.get("Environment", name)
        assert isinstance(obj, Environment)
        return obj

    def list(self, organization: str | None = None) -> list[Environment]:
        return [e for e in self.store.list("Environment")
                if isinstance(e, Environment) and (organization is None or e.spec.organization == organization)]
