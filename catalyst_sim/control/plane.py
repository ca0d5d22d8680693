"""The composition root: one Sovereign's reference control plane, wired to its endpoints.

The control plane reaches its infrastructure only through wire protocols (DESIGN.md §1): the
Gitea API and git for Git, the Kubernetes API of the host clusters and vclusters, and later NATS
and OpenBao. Whichever backend produced the endpoints, the wiring is the same. The synchronous
services answer API calls; the controllers run on the API server's event loop.
"""

from __future__ import annotations

import asyncio
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
from catalyst_sim.control.events.wiring import EventSpine, NatsAccounts
from catalyst_sim.control.identity import Authenticator, IdentityTopology
from catalyst_sim.control.identity.svid import SvidIssuer
from catalyst_sim.control.organizations import OrganizationService
from catalyst_sim.control.promotion import PromotionController, PromotionService, SoakLedger
from catalyst_sim.control.provisioning.service import ProvisioningService
from catalyst_sim.control.secrets import SecretsService, SecretsTiming
from catalyst_sim.control.secrets.service import OpenBaoRegions
from catalyst_sim.control.secrets.wiring import SecretsWiring
from catalyst_sim.control.sovereignty import Sovereignty, SovereigntyConfig
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
    # Secrets (R-SEC-01): the regions' OpenBao servers and the SPIRE-equivalent; without them no secrets sync.
    openbao: OpenBaoRegions | None = None
    svid_issuer: SvidIssuer | None = None
    # The event spine (R-PROJ-01..03): NATS with an account per Organization. Without it, cards come
    # from the interim in-memory read side below.
    nats: NatsAccounts | None = None
    # Self-sovereignty (ADR-0002): the handed-over clusters, the mothership's network and Toxiproxy. Without
    # it there is no cutover to start.
    sovereignty: SovereigntyConfig | None = None

    def sovereign(self) -> Sovereign:
        return load_one(self.topology.read_text(), source=str(self.topology), expect=Sovereign)


class ControlPlane:
    def __init__(self, config: ControlPlaneConfig, clock: Clock, identity: IdentityTopology | None = None) -> None:
        self.config = config
        self.clock = clock
        self.gitea_url = config.gitea_url
        self._api_url = ""
        self.webhook_secret = secrets.token_hex(16)
        self._observations: dict[tuple[str, str, str], CardInputs] = {}
        self._observations_lock = threading.Lock()
        self.sovereign = config.sovereign()
        # The Sovereign's Keycloak realms (R-ID-04/05); the API verifies every call's token against them.
        self.identity = identity or IdentityTopology(self.sovereign.metadata.name,
                                                     self.sovereign.spec.keycloakTopology, clock)
        self.authenticator = Authenticator(self.identity, clock)
        self.gitea = GiteaClient(config.gitea_url, config.gitea_token)
        self.catalog = BlueprintRegistry.load(config.blueprints_dir)
        self.store = ConfigStore(self.gitea)
        self.secrets = self._secrets_wiring()
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
        # Every state change is published to JetStream and folded into KV per Environment (ARCH §5).
        self.events = EventSpine(config.nats, clock) if config.nats is not None else None
        # The dormant self-sovereignty cutover and its egress-block proof (ARCH §11.1, R-CUT, R-DOD).
        self.sovereignty = Sovereignty(config.sovereignty, clock) if config.sovereignty is not None else None

    @property
    def api_url(self) -> str:
        """Where the Catalyst API serves; Gitea webhooks point here. Set once the API is up."""
        return self._api_url

    @api_url.setter
    def api_url(self, url: str) -> None:
        self._api_url = url
        if url:
            self._hook_system()

    def _secrets_wiring(self) -> SecretsWiring | None:
        """Secrets sync in every vcluster when the backend runs OpenBao and the SPIRE-equivalent (R-SEC-01)."""
        if self.config.openbao is None or self.config.svid_issuer is None:
            return None
        service = SecretsService(sovereign=self.sovereign.metadata.name, clock=self.clock, openbao=self.config.openbao,
                                 issuer=self.config.svid_issuer, timing=SecretsTiming(resync=600.0))
        return SecretsWiring(service, environments=lambda org: self.environments.list(org),
                             applications=lambda org: self.provisioning.applications(org),
                             config_schema=lambda name, version: self.catalog.get(name, version).spec.configSchema
                             or {})

    def _environment_created(self, environment: Environment) -> None:
        if self.events is not None:  # its subjects, stream and projector (R-ENV-02 (4), (5))
            self.events.environment_created(environment.metadata.name)
        if self.secrets is not None:  # before its vclusters exist: their first sync finds the credentials
            self.secrets.credentials_needed(environment.spec.organization)
        self.controller.enqueue(environment)
        self.promotions.organization_changed(environment.spec.organization)  # its branch may need protection

    def _applications_installed(self, organization: str) -> None:
        if self.secrets is not None:
            self.secrets.credentials_needed(organization)
        self.controller.applications_changed(organization)
        self.promotions.organization_changed(organization)  # new App repos get the policies' protection

    def _gitops_factory(self) -> Callable[[Environment, str, Path], GitOps] | None:
        try:
            from catalyst_sim.control.gitops.engine import GitOpsEngine
        except ImportError:  # the GitOps engine is optional while it is being built
            return None

        def create(environment: Environment, context: str, kubeconfig: Path) -> GitOps:
            on_event: Callable[[dict[str, Any]], None] = self._on_flux_event
            if self.events is not None:
                # The engine's event ids restart at 1 with every instance: the tag keeps them unique.
                instance = self.events.instance_tag()
                on_event = lambda event: self._on_flux_event(event, instance)  # noqa: E731
                self.events.watch_vcluster(environment.metadata.name, context, kubeconfig)
            engine = GitOpsEngine(
                vcluster=context, organization=environment.spec.organization,
                environment=environment.metadata.name, env_type=environment.spec.envType,
                kubeconfig=kubeconfig, gitea_url=self.config.gitea_url, gitea_token=self.config.gitea_token,
                catalog=self.catalog, clock=self.clock, workdir=self.config.workdir / "gitops" / context,
                on_event=on_event, sovereign=self.sovereign.metadata.name)
            # External Secrets runs beside Flux in every vcluster (R-SEC-01).
            return self.secrets.wrap(engine, environment, context, kubeconfig) if self.secrets else engine

        return create

    def _on_flux_event(self, event: dict[str, Any], instance: str = "") -> None:
        """Publish each GitOps outcome to the spine (or, without NATS, remember it: the interim read side).
        A commit first Ready in an Environment starts its soak (D-11)."""
        if self.events is not None:
            self.events.submit_flux(event, instance=instance)
        if not event["type"].startswith("io.fluxcd.kustomize."):
            return
        self.promotions.flux_event(event)
        if self.events is not None:
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
        # An open promotion PR into this Environment shows as Pending approval (R-PROMO-08, D-09).
        pending = self.promotion_service.pending_approval(environment, app)
        cards = ({vc: derive_card(dataclasses.replace(obs, pending_approval=pending)) for vc, obs in inputs.items()}
                 or {"": derive_card(CardInputs(ready=None, pending_approval=pending))})
        worst = min(cards.values(), key=lambda card: PRECEDENCE.index(card.state))
        shown = {"state": worst.state.value, "glyph": worst.state.glyph, "text": worst.text,
                 "vclusters": {vc: card.state.value for vc, card in cards.items() if vc}}
        # A Running App whose ExternalSecret is not Ready is Degraded (R-CARD-02).
        return self.secrets.card(environment, app, shown) if self.secrets is not None else shown

    async def application_cards(self, environment: str, apps: list[str]) -> dict[str, dict[str, Any]]:
        """The cards of ``apps`` in one Environment: from its KV read model when the spine runs (R-PROJ-03)."""
        if self.events is None:
            return {app: self.application_card(environment, app) for app in apps}
        from catalyst_sim.control.api.state import cards

        shown = await cards(self.events, environment, apps)
        if self.secrets is not None:  # a Running App whose ExternalSecret is not Ready is Degraded (R-CARD-02)
            shown = {app: self.secrets.card(environment, app, card) for app, card in shown.items()}
        return shown

    def gitea_event(self, event: str, payload: dict[str, Any]) -> None:
        """A Gitea webhook of an Organization's repo, published to the spine (R-GIT-03, R-PROMO-08)."""
        if self.events is None:
            return
        owner = str(payload.get("repository", {}).get("full_name", "")).partition("/")[0]
        if event == "push":
            self.events.submit_git_push(owner, payload)
        elif event.startswith("pull_request") and isinstance(payload.get("pull_request"), dict):
            pull = payload["pull_request"]
            self.events.submit_pull_request(
                owner, str(payload["repository"].get("name", "")), int(pull.get("number") or payload["number"]),
                open=pull.get("state") == "open" and not pull.get("merged"), base=str(pull["base"]["ref"]),
                head_sha=str(pull["head"].get("sha") or "0" * 40), action=str(payload.get("action", "")))

    def promotion_opened(self, organization: str, app: str, number: int, head: str, base: str) -> None:
        """Catalyst opened a promotion PR: its destination shows Pending approval at once (R-PROMO-08);
        the PR's own webhook, arriving later, says the same. Blocking (one Gitea read)."""
        if self.events is not None:
            sha = str(self.gitea.get_branch(organization, app, head).get("commit", {}).get("id", ""))
            self.events.submit_pull_request(organization, app, number, open=True, base=base,
                                            head_sha=sha or "0" * 40, action="opened")

    def application_names(self, organization: str) -> list[str]:
        return sorted({app.metadata.name for app in self.provisioning.applications(organization)})

    def _hook_organization(self, organization: str) -> None:
        """One org webhook per Organization: every push (R-GIT-03) and pull request event (R-PROMO)
        reaches the control plane; and its Keycloak realm, so its people can log in (R-ORG-03)."""
        self.identity.add_organization(organization)
        if self.events is not None:  # its NATS account (R-ORG-03, R-NAME-16)
            self.events.organization_created(organization)
        if self.secrets is not None:  # its OpenBao policy and SVID role, in every region (R-SEC-01)
            self.secrets.organization_created(organization)
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
        # Events in flight to the projector are work too: a card read must see them folded.
        return (self.controller.idle and self.promotions.idle and (self.events is None or self.events.settled())
                and (self.sovereignty is None or self.sovereignty.idle))

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Synchronous part: make sure the Sovereign's Git layout exists and load its CRs."""
        self.store.ensure_layout()
        self.store.load()
        if self.store.find("Sovereign", self.sovereign.metadata.name) is None:
            self.store.put(self.sovereign, message=f"Sovereign {self.sovereign.metadata.name}")
        self._sync_realms()

    def _sync_realms(self) -> None:
        """A realm for every Organization in Git and none for an Organization that is gone."""
        organizations = {o.metadata.name for o in self.organizations.list()}
        for gone in set(self.identity.organizations()) - organizations:
            self.identity.remove_organization(gone)
        for organization in sorted(organizations):
            self.identity.add_organization(organization)

    async def start_controllers(self) -> None:
        if self.events is not None:
            await self.events.start()
            for environment in self.environments.list():
                self.events.environment_created(environment.metadata.name)
        await self.controller.start()
        await self.promotions.start()
        for environment in self.environments.list():
            self.controller.enqueue(environment)
        if self.sovereignty is not None:  # resumes a cutover the status ConfigMap says was running
            await self.sovereignty.start()

    async def stop_controllers(self) -> None:
        if self.sovereignty is not None:
            await self.sovereignty.stop()
        await self.promotions.stop()
        await self.controller.stop()
        if self.events is not None:
            await self.events.stop()

    async def reset(self) -> None:
        """The harness wiped the Sovereign: drop cached state and reload it from Git."""
        await self.controller.reset()
        if self.events is not None:  # the engines stopped above: nothing publishes any more
            await self.events.reset()
        with self._observations_lock:
            self._observations.clear()
        if self.secrets is not None:  # the vclusters' secrets controllers stopped with their engines above
            await asyncio.to_thread(self.secrets.reset)
        self.store.forget()
        self.start()
        await self.promotions.reset()  # after the reload: it recovers open promotions from what exists now
        if self.sovereignty is not None:  # the host clusters are back in the handed-over state
            await self.sovereignty.reset()

    def close(self) -> None:
        self.gitea.close()
        if self.sovereignty is not None:
            self.sovereignty.close()
