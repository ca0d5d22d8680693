"""Secrets in the control plane: what the composition root (:mod:`catalyst_sim.control.plane`) plugs in.

* :class:`GitOpsWithSecrets` is what a vcluster runs: its GitOps engine (which also applies the App repos'
  ``secrets/`` ExternalSecrets) and, beside it, the External-Secrets equivalent of that vcluster, started
  after the engine (the engine serves ESO's CRDs), settled and stopped together. The environment-controller
  sees one GitOps.
* :class:`SecretsWiring` reacts to the control plane's events: an Organization gets its OpenBao policy and
  ``jwt`` role in every region; every App of an Organization gets its generated credentials in every
  Environment of the Organization (App repos are realized in every Environment, R-ENVC-02), at the path its
  repo's ExternalSecret names; an App card turns Degraded while one of its ExternalSecrets is not Ready.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from catalyst_sim.control.secrets.controller import SecretsController
from catalyst_sim.control.secrets.service import SecretsService, credential_keys
from catalyst_sim.model.resources import Application, Environment

log = logging.getLogger(__name__)


class GitOpsWithSecrets:
    """One vcluster's GitOps engine and secrets controller, seen as one GitOps by the environment-controller."""

    def __init__(self, engine: Any, secrets: SecretsController) -> None:
        self.engine = engine
        self.secrets = secrets

    async def start(self) -> None:
        await self.engine.start()
        try:
            await self.secrets.start()
        except BaseException:
            await self.engine.stop()
            raise

    async def add_application(self, app: str, repo: str, branch: str) -> None:
        await self.engine.add_application(app, repo, branch)

    def request_reconcile(self, app: str | None = None) -> None:
        self.engine.request_reconcile(app)

    def settled(self) -> bool:
        return bool(getattr(self.engine, "settled", lambda: True)()) and self.secrets.settled()

    async def stop(self) -> None:
        try:
            await self.secrets.stop()
        finally:
            await self.engine.stop()

    def __getattr__(self, name: str) -> Any:  # the engine's other surfaces (applications, remove_application)
        return getattr(self.engine, name)


class SecretsWiring:
    def __init__(self, service: SecretsService, *, environments: Callable[[str], list[Environment]],
                 applications: Callable[[str], list[Application]],
                 config_schema: Callable[[str, str], dict[str, Any]]) -> None:
        self.service = service
        self.environments = environments  # organization -> its Environments
        self.applications = applications  # organization -> its Applications
        self.config_schema = config_schema  # (blueprint, version) -> configSchema

    def wrap(self, engine: Any, environment: Environment, context: str, kubeconfig: Path) -> GitOpsWithSecrets:
        controller = self.service.controller(organization=environment.spec.organization,
                                             environment=environment.metadata.name, context=context,
                                             kubeconfig=kubeconfig)
        return GitOpsWithSecrets(engine, controller)

    def organization_created(self, organization: str) -> None:
        self.service.organization_created(organization)

    def credentials_needed(self, organization: str) -> None:
        """Generate the credentials every App of the Org lacks in each of its Environments (never overwritten)."""
        apps = self.applications(organization)
        for environment in self.environments(organization):
            for app in apps:
                self.service.ensure_credentials(organization, environment.spec.envType, app.metadata.name,
                                                self._keys(app))

    def _keys(self, app: Application) -> list[str]:
        try:
            schema = self.config_schema(app.spec.blueprint.name, app.spec.blueprint.version)
        except Exception as exc:  # a Blueprint gone from the catalog: the repo's ExternalSecret asks for password
            log.warning("no configSchema for %s (%s): generating only 'password'", app.metadata.name, exc)
            schema = {}
        return credential_keys(schema)

    def card(self, environment: str, app: str, card: dict[str, Any]) -> dict[str, Any]:
        return self.service.card(environment, app, card)

    def reset(self) -> None:
        self.service.reset()
