"""The composition root: one Sovereign's reference control plane, wired to its endpoints.

The control plane reaches its infrastructure only through wire protocols (DESIGN.md §1): the
Gitea API and git for Git, the Kubernetes API of the host clusters and vclusters, and later NATS
and OpenBao. Whichever backend produced the endpoints, the wiring is the same. The synchronous
services answer API calls; the controllers run on the API server's event loop.
"""

from __future__ import annotations

import dataclasses
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
from catalyst_sim.control.config_store import SYSTEM_ORG, ConfigStore
from catalyst_sim.control.environments import EnvironmentService
from catalyst_sim.control.environments.controller import EnvironmentController, GitOps
from catalyst_sim.control.organizations import OrganizationService
from catalyst_sim.control.promotion import PromotionController, PromotionService, SoakLedger
from catalyst_sim.control.provisioning.service import ProvisioningService
from catalyst_sim.model.loader import load_one
from catalyst_sim.model.resources import Environment, Sovereign

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# Every push, and every pull request and review event, of an Organization's repos reaches the
# control plane: pushes reconcile vclusters (R-GIT-03), PR events re-evaluate promotions (R-PROMO).
ORG_HOOK_EVENTS = ("push", "pull_request")


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
        self._api_url = ""
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
        self.environments = EnvironmentService(self.store, self.sovereign, on_created=self._environment_created)
        self.provisioning = ProvisioningService(sovereign=self.sovereign.metadata.name, store=self.store,
                                                gitea=self.gitea, catalog=self.catalog,
                                                on_installed=self._applications_installed)
        self.promotion_service = PromotionService(
            gitea=self.gitea, clock=clock, sovereign=self.sovereign, environments=lambda: self.environments.list(),
            applications=self.application_names, ledger=SoakLedger())
        self.promotions = PromotionController(self.promotion_service, clock)

    @property
    def api_url(self) -> str:
        """Where the Catalyst API serves; Gitea webhooks point here. Set once the API is up."""
        return self._api_url

    @api_url.setter
    def api_url(self, url: str) -> None:
        self._api_url = url
        if url:
            self._hook_system()

    def _environment_created(self, environment: Environment) -> None:
        self.controller.enqueue(environment)
        self.promotions.organization_changed(environment.spec.organization)  # its branch may need protection

    def _applications_installed(self, organization: str) -> None:
        self.controller.applications_changed(organization)
        self.promotions.organization_changed(organization)  # new App repos get the policies' protection

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
        """Remember each Kustomization outcome: the interim read side until the projector exists.
        A commit first Ready in an Environment starts its soak (D-11)."""
        if not event["type"].startswith("io.fluxcd.kustomize."):
            return
        self.promotions.flux_event(event)
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
        # An open promotion PR into this Environment shows as Pending approval (R-PROMO-08, D-09).
        pending = self.promotion_service.pending_approval(environment, app)
        cards = ({vc: derive_card(dataclasses.replace(obs, pending_approval=pending)) for vc, obs in inputs.items()}
                 or {"": derive_card(CardInputs(ready=None, pending_approval=pending))})
        worst = min(cards.values(), key=lambda card: PRECEDENCE.index(card.state))
        return {"state": worst.state.value, "glyph": worst.state.glyph, "text": worst.text,
                "vclusters": {vc: card.state.value for vc, card in cards.items() if vc}}

    def application_names(self, organization: str) -> list[str]:
        return sorted({app.metadata.name for app in self.provisioning.applications(organization)})

    def _hook_organization(self, organization: str) -> None:
        """One org webhook per Organization: every push (R-GIT-03) and pull request event (R-PROMO)
        reaches the control plane."""
        if self.api_url:
            self.gitea.create_org_hook(organization, f"{self.api_url}/api/v1/hooks/gitea",
                                       secret=self.webhook_secret, events=ORG_HOOK_EVENTS)

    def _hook_system(self) -> None:
        """The ``system`` Org's pushes (policies, RE scores) reach the control plane too, once: the
        hook outlives a reset, which only rewinds the system repos."""
        url = f"{self.api_url}/api/v1/hooks/gitea"
        if any(hook.get("config", {}).get("url") == url for hook in self.gitea.list_org_hooks(SYSTEM_ORG)):
            return
        self.gitea.create_org_hook(SYSTEM_ORG, url, secret=self.webhook_secret, events=("push",))

    def environment_status(self, name: str) -> dict[str, Any]:
        states = self.controller.vclusters.get(name, {})
        vclusters = [{"hostCluster": s.host_cluster, "vcluster": name.rsplit("-", 1)[0], "context": s.context,
                      "ready": s.ready, "message": s.message} for s in states.values()]
        return {"ready": bool(vclusters) and all(v["ready"] for v in vclusters), "vclusters": vclusters}

    def settled(self) -> bool:
        """No controller work queued or running: what is left waits for the clock (DESIGN.md §1)."""
        return self.controller.idle and self.promotions.idle

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Synchronous part: make sure the Sovereign's Git layout exists and load its CRs."""
        self.store.ensure_layout()
        self.store.load()
        if self.store.find("Sovereign", self.sovereign.metadata.name) is None:
            self.store.put(self.sovereign, message=f"Sovereign {self.sovereign.metadata.name}")

    async def start_controllers(self) -> None:
        await self.controller.start()
        await self.promotions.start()
        for environment in self.environments.list():
            self.controller.enqueue(environment)

    async def stop_controllers(self) -> None:
        await self.promotions.stop()
        await self.controller.stop()

    async def reset(self) -> None:
        """The harness wiped the Sovereign: drop cached state and reload it from Git."""
        await self.controller.reset()
        with self._observations_lock:
            self._observations.clear()
        self.store.forget()
        self.start()
        await self.promotions.reset()  # after the reload: it recovers open promotions from what exists now

    def close(self) -> None:
        self.gitea.close()
