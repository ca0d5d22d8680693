"""The composition root: one Sovereign's reference control plane, wired to its endpoints.

The control plane reaches its infrastructure only through wire protocols (DESIGN.md §1): the
Gitea API and git for Git, the Kubernetes API of the host clusters and vclusters, and later NATS
and OpenBao. Whichever backend produced the endpoints, the wiring is the same. The synchronous
services answer API calls; the controllers run on the API server's event loop.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.clock import Clock
from catalyst_sim.control.cards import PRECEDENCE, CardInputs, derive_card
from catalyst_sim.control.catalog import BlueprintRegistry
from catalyst_sim.control.config_store import ConfigStore
from catalyst_sim.control.environments import EnvironmentService
from catalyst_sim.control.environments.controller import EnvironmentController, GitOps
from catalyst_sim.control.organizations import OrganizationService
from catalyst_sim.control.provisioning.service import ProvisioningService
from catalyst_sim.model.loader import load_one
from catalyst_sim.model.resources import Environment, Sovereign

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@dataclass
class ControlPlaneConfig:
    gitea_url: str
    gitea_token: str
    workdir: Path
    topology: Path = FIXTURES / "topologies" / "sme.yaml"
    blueprints_dir: Path = FIXTURES / "blueprints"
    host_kubeconfigs: dict[str, Path] = field(default_factory=dict)

    def sovereign(self) -> Sovereign:
        return load_one(self.topology.read_text(), source=str(self.topology), expect=Sovereign)


class ControlPlane:
    def __init__(self, config: ControlPlaneConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.gitea_url = config.gitea_url
        self.api_url = ""  # set once the Catalyst API serves; Gitea webhooks point here
        self.webhook_secret = secrets.token_hex(16)
        self._observations: dict[tuple[str, str, str], CardInputs] = {}
        self._observations_lock = threading.Lock()
        self.sovereign = config.sovereign()
        self.gitea = GiteaClient(config.gitea_url, config.gitea_token)
        self.catalog = BlueprintRegistry.load(config.blueprints_dir)
        self.store = ConfigStore(self.gitea)
        self.controller = EnvironmentController(
            sovereign=self.sovereign, host_kubeconfigs=config.host_kubeconfigs, clock=clock,
            workdir=config.workdir, applications=self.application_names, gitops=self._gitops_factory())
        self.organizations = OrganizationService(self.store, self.gitea, on_created=self._hook_organization)
        self.environments = EnvironmentService(self.store, self.sovereign, on_created=self.controller.enqueue)
        self.provisioning = ProvisioningService(sovereign=self.sovereign.metadata.name, store=self.store,
                                                gitea=self.gitea, catalog=self.catalog,
                                                on_installed=self.controller.applications_changed)

    def _gitops_factory(self) -> Callable[[Environment, str, Path], GitOps] | None:
        try:
            from catalyst_sim.control.gitops.engine import GitOpsEngine
        except ImportError:  # the GitOps engine is optional while it is being built
            return None

        def create(environment: Environment, context: str, kubeconfig: Path) -> GitOps:
            return GitOpsEngine(
                vcluster=context, organization=environment.spec.organization,
                environment=environment.metadata.name, env_type=environment.spec.envType,
                kubeconfig=kubeconfig, gitea_url=self.config.gitea_url, gitea_token=self.config.gitea_token,
                catalog=self.catalog, clock=self.clock, workdir=self.config.workdir / "gitops" / context,
                on_event=self._on_flux_event, sovereign=self.sovereign.metadata.name)

        return create

    def _on_flux_event(self, event: dict[str, Any]) -> None:
        """Remember each Kustomization outcome: the interim read side until the projector exists."""
        if not event["type"].startswith("io.fluxcd.kustomize."):
            return
        data = event["data"]
        key = (event["environment"], event["subject"], event["vcluster"])
        with self._observations_lock:
            previous = self._observations.get(key)
            self._observations[key] = CardInputs(
                ready={"True": True, "False": False}.get(data.get("ready", "")),
                reason=data.get("reason", ""), message=data.get("message", ""),
                ever_ready=(previous.ever_ready if previous else False) or data.get("ready") == "True")

    def application_card(self, environment: str, app: str) -> dict[str, Any]:
        """The card of one App in one Environment: the worst state over its vclusters (D-09)."""
        with self._observations_lock:
            inputs = {vc: obs for (env, name, vc), obs in self._observations.items()
                      if env == environment and name == app}
        cards = {vc: derive_card(obs) for vc, obs in inputs.items()} or {"": derive_card(CardInputs(ready=None))}
        worst = min(cards.values(), key=lambda card: PRECEDENCE.index(card.state))
        return {"state": worst.state.value, "glyph": worst.state.glyph, "text": worst.text,
                "vclusters": {vc: card.state.value for vc, card in cards.items() if vc}}

    def application_names(self, organization: str) -> list[str]:
        return sorted({app.metadata.name for app in self.provisioning.applications(organization)})

    def _hook_organization(self, organization: str) -> None:
        """One org webhook per Organization: every push reaches the control plane (R-GIT-03)."""
        if self.api_url:
            self.gitea.create_org_hook(organization, f"{self.api_url}/api/v1/hooks/gitea",
                                       secret=self.webhook_secret, events=("push",))

    def environment_status(self, name: str) -> dict[str, Any]:
        states = self.controller.vclusters.get(name, {})
        vclusters = [{"hostCluster": s.host_cluster, "vcluster": name.rsplit("-", 1)[0], "context": s.context,
                      "ready": s.ready, "message": s.message} for s in states.values()]
        return {"ready": bool(vclusters) and all(v["ready"] for v in vclusters), "vclusters": vclusters}

    def settled(self) -> bool:
        """No controller work queued or running: what is left waits for the clock (DESIGN.md §1)."""
        return self.controller.idle

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Synchronous part: make sure the Sovereign's Git layout exists and load its CRs."""
        self.store.ensure_layout()
        self.store.load()
        if self.store.find("Sovereign", self.sovereign.metadata.name) is None:
            self.store.put(self.sovereign, message=f"Sovereign {self.sovereign.metadata.name}")

    async def start_controllers(self) -> None:
        await self.controller.start()
        for environment in self.environments.list():
            self.controller.enqueue(environment)

    async def stop_controllers(self) -> None:
        await self.controller.stop()

    async def reset(self) -> None:
        """The harness wiped the Sovereign: drop cached state and reload it from Git."""
        await self.controller.reset()
        with self._observations_lock:
            self._observations.clear()
        self.store.forget()
        self.start()

    def close(self) -> None:
        self.gitea.close()
