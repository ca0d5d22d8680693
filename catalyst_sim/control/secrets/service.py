"""The control plane's side of secrets: Org setup in OpenBao, generated values, rotation, the read side.

* :meth:`SecretsService.controller` builds the :class:`~.controller.SecretsController` of one vcluster,
  wired to the OpenBao of the vcluster's region (R-MR-05: reads are region-local) and to an
  :class:`~catalyst_sim.control.identity.svid.SvidAgent` for ``spiffe://<sovereign>/ns/{org}/sa/external-secrets``.
* :meth:`SecretsService.organization_created` gives the Org its policy and ``jwt`` role in every region.
* :meth:`SecretsService.ensure_credentials` generates an App's credentials straight into OpenBao (never
  printed, R-SEC-02) at ``org/{org}/env/{env_type}/{app}/credentials``, the path its repo's
  ExternalSecret names; existing values are never overwritten.
* :meth:`SecretsService.rotate` writes a new version and keeps the previous one readable for the grace
  window (24 h, R-SEC-02), then destroys it in OpenBao on the clock: from then on the old value is gone.
* :meth:`SecretsService.card` turns a Running App card Degraded while one of its ExternalSecrets is not
  Ready, with the reason (R-CARD-02: Degraded is "Ready, but" something is wrong).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from catalyst_sim.clock import Clock, TimerHandle
from catalyst_sim.control.cards import CardState
from catalyst_sim.control.identity.svid import SvidAgent, SvidIssuer
from catalyst_sim.control.secrets.controller import SecretsController, SecretsTiming, SyncStatus
from catalyst_sim.model import naming

ESO_SERVICE_ACCOUNT = "external-secrets"
GRACE = timedelta(hours=24)  # R-SEC-02: the old value stays valid 24 h after a rotation


class OpenBaoRegions(Protocol):
    """What the service needs of the Sovereign's OpenBao servers (:class:`RegionalOpenBao` has it)."""

    regions: list[str]

    def url(self, region: str) -> str: ...

    def add_organization(self, org: str) -> None: ...

    def write(self, path: str, values: dict[str, Any], regions: Iterable[str] | None = None) -> None: ...

    def read(self, path: str, region: str) -> dict[str, Any] | None: ...

    def admin(self, region: str) -> Any: ...


def credentials_path(org: str, env_type: str, app: str) -> str:
    """Where an App's generated credentials live (R-NAME-18), as its repo's ExternalSecret names it."""
    for value, what in ((org, "Organization"), (env_type, "env_type"), (app, "Application")):
        if problems := naming.problems_for_dns_label(value, what=what):
            raise ValueError(problems[0].message)
    return f"org/{org}/env/{env_type}/{app}/credentials"


def _env_root(path: str) -> tuple[str, str]:
    parts = path.strip("/").split("/")
    if len(parts) < 5 or parts[0] != "org" or parts[2] != "env":
        raise ValueError(f"{path!r} is not below an Environment's OpenBao root org/{{org}}/env/{{env_type}}/ "
                         "(R-NAME-18)")
    return parts[1], parts[3]


@dataclass(frozen=True)
class Rotation:
    path: str
    version: int
    previous: int
    rotated_at: datetime
    grace_until: datetime


class SecretsService:
    def __init__(self, *, sovereign: str, clock: Clock, openbao: OpenBaoRegions, issuer: SvidIssuer,
                 timing: SecretsTiming | None = None) -> None:
        self.sovereign = sovereign
        self.clock = clock
        self.openbao = openbao
        self.issuer = issuer
        self.timing = timing
        self._lock = threading.Lock()
        self._status: dict[tuple[str, str], dict[tuple[str, str, str], SyncStatus]] = {}
        self._revocations: dict[str, TimerHandle] = {}
        self.rotations: dict[str, Rotation] = {}

    # -- wiring -------------------------------------------------------------------------------------
    def region_of(self, vcluster_context: str) -> str:
        host, _ = naming.parse_vcluster_context(vcluster_context)
        return host.region

    def controller(self, *, organization: str, environment: str, context: str, kubeconfig: Path
                   ) -> SecretsController:
        region = self.region_of(context)
        agent = SvidAgent(self.issuer, organization, ESO_SERVICE_ACCOUNT).start()
        return SecretsController(vcluster=context, organization=organization, environment=environment,
                                 kubeconfig=kubeconfig, clock=self.clock, openbao_url=self.openbao.url(region),
                                 agent=agent, on_status=self._observe, timing=self.timing)

    def organization_created(self, org: str) -> None:
        self.openbao.add_organization(org)

    # -- values --------------------------------------------------------------------------------------
    def ensure_credentials(self, org: str, env_type: str, app: str, keys: Iterable[str]) -> bool:
        """Generate the App's missing credentials (same value in every region); True if anything was written."""
        path = credentials_path(org, env_type, app)
        wanted = sorted({k for k in keys if k}) or ["password"]
        current = self._read_any(path) or {}
        missing = [k for k in wanted if k not in current]
        if not missing:
            return False
        self.openbao.write(path, {**current, **{k: secrets.token_urlsafe(24) for k in missing}})
        return True

    def _read_any(self, path: str) -> dict[str, Any] | None:
        for region in self.openbao.regions:
            try:
                return self.openbao.read(path, region)
            except Exception:  # a region that is down: ask the next one
                continue
        return None

    def rotate(self, path: str, values: dict[str, str] | None = None, *, grace: timedelta = GRACE) -> Rotation:
        """A new version at ``path`` (generated unless given); the previous one is destroyed after ``grace``."""
        _env_root(path)
        current = self._read_any(path)
        if current is None:
            raise LookupError(f"{path}: no secret to rotate in OpenBao")
        new = values or {k: secrets.token_urlsafe(24) for k in current}
        previous = self._version(path)
        self.openbao.write(path, new)
        now = self.clock.now()
        rotation = Rotation(path, previous + 1, previous, now, now + grace)
        with self._lock:
            self.rotations[path] = rotation
            old = self._revocations.pop(f"{path}@{previous}", None)
            if old is not None:
                old.cancel()
            self._revocations[f"{path}@{previous}"] = self.clock.call_at(
                rotation.grace_until, lambda: self._revoke(path, previous))
        return rotation

    def _version(self, path: str) -> int:
        mount, _, sub = path.partition("/")
        meta = self.openbao.admin(self.openbao.regions[0]).secrets.kv.v2.read_secret_metadata(
            path=sub, mount_point=mount)
        return int(meta["data"]["current_version"])

    def _revoke(self, path: str, version: int) -> None:
        """End of the grace window: destroy the old version in every region that is up."""
        mount, _, sub = path.partition("/")
        with self._lock:
            self._revocations.pop(f"{path}@{version}", None)
        for region in self.openbao.regions:
            try:
                self.openbao.admin(region).secrets.kv.v2.destroy_secret_versions(
                    path=sub, versions=[version], mount_point=mount)
            except Exception:  # a region that is down keeps it until it is back (not modelled further)
                continue

    # -- read side -----------------------------------------------------------------------------------
    def _observe(self, status: SyncStatus) -> None:
        with self._lock:
            per_app = self._status.setdefault((status.environment, status.application), {})
            per_app[(status.vcluster, status.namespace, status.name)] = status

    def problems(self, environment: str, app: str) -> list[SyncStatus]:
        with self._lock:
            return sorted((s for s in self._status.get((environment, app), {}).values() if not s.ready),
                          key=lambda s: (s.vcluster, s.namespace, s.name))

    def card(self, environment: str, app: str, card: dict[str, Any]) -> dict[str, Any]:
        """A Running card becomes Degraded while an ExternalSecret of the App is not Ready."""
        problems = self.problems(environment, app)
        if not problems or card.get("state") != CardState.RUNNING.value:
            return card
        first = problems[0]
        return {**card, "state": CardState.DEGRADED.value, "glyph": CardState.DEGRADED.glyph,
                "text": f"ExternalSecret {first.namespace}/{first.name} not Ready: {first.reason}: {first.message}"}

    def reset(self) -> None:
        with self._lock:
            for handle in self._revocations.values():
                handle.cancel()
            self._revocations.clear()
            self._status.clear()
            self.rotations.clear()
        reset = getattr(self.openbao, "reset", None)
        if reset is not None:
            reset()


def credential_keys(config_schema: dict[str, Any]) -> list[str]:
    """The keys an App's repo ExternalSecret asks for (provisioning's password fields, else ``password``)."""
    from catalyst_sim.control.provisioning.manifests import secret_fields

    return secret_fields(config_schema) or ["password"]
