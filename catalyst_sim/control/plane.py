"""The composition root: one Sovereign's reference control plane, wired to its endpoints.

The control plane reaches its infrastructure only through wire protocols (DESIGN.md §1): the
Gitea API for Git, and later NATS, OpenBao and the Kubernetes API. Whichever backend produced the
endpoints, the wiring is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.clock import Clock
from catalyst_sim.control.catalog import BlueprintRegistry
from catalyst_sim.control.config_store import ConfigStore
from catalyst_sim.control.environments import EnvironmentService
from catalyst_sim.control.organizations import OrganizationService
from catalyst_sim.control.provisioning.service import ProvisioningService
from catalyst_sim.model.loader import load_one
from catalyst_sim.model.resources import Sovereign

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@dataclass
class ControlPlaneConfig:
    gitea_url: str
    gitea_token: str
    topology: Path = FIXTURES / "topologies" / "sme.yaml"
    blueprints_dir: Path = FIXTURES / "blueprints"

    def sovereign(self) -> Sovereign:
        return load_one(self.topology.read_text(), source=str(self.topology), expect=Sovereign)


class ControlPlane:
    def __init__(self, config: ControlPlaneConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.gitea_url = config.gitea_url
        self.sovereign = config.sovereign()
        self.gitea = GiteaClient(config.gitea_url, config.gitea_token)
        self.catalog = BlueprintRegistry.load(config.blueprints_dir)
        self.store = ConfigStore(self.gitea)
        self.organizations = OrganizationService(self.store, self.gitea)
        self.environments = EnvironmentService(self.store, self.sovereign)
        self.provisioning = ProvisioningService(sovereign=self.sovereign.metadata.name, store=self.store,
                                                gitea=self.gitea,
                                                catalog=self.catalog)

    def start(self) -> None:
        self.store.ensure_layout()
        self.store.load()
        if self.store.find("Sovereign", self.sovereign.metadata.name) is None:
            self.store.put(self.sovereign, message=f"Sovereign {self.sovereign.metadata.name}")

    def forget(self) -> None:
        """Drop cached state; the harness calls this after wiping the Sovereign's Gitea."""
        self.store.forget()

    def close(self) -> None:
        self.gitea.close()
