"""A Sovereign's Keycloak topology: which Keycloak, and which realm, issues whose tokens (R-SOV-02, R-ID-04/05).

``keycloakTopology`` is the only behavioural switch between an SME and a corporate Sovereign (R-SOV-02,
R-CRD-03), so it is the only branch in this module:

* ``per-organization`` (R-ID-04): every Organization gets its own minimal Keycloak with realm ``{org}``.
  Each is its own failure domain: :meth:`IdentityTopology.set_available` takes down one Org's Keycloak
  and every other Org keeps logging in.
* ``shared-sovereign`` (R-ID-05): one Keycloak with realm ``catalyst-admin`` plus one realm ``{org}`` per
  Organization. It is one process, so taking it down takes down every realm; that is the documented
  trade-off, not a bug.

Decisions:

* Issuer URLs follow Keycloak's ``{keycloak}/realms/{realm}``. The control-plane Keycloak (the shared one,
  or under ``per-organization`` the one holding ``catalyst-admin``) lives at ``base_url``; an Org's own
  Keycloak under ``per-organization`` lives at ``{base_url}/keycloak/{org}``, so one emulator port can
  serve every instance while each keeps a distinct issuer.
* Under ``per-organization`` the sovereign-admin team still needs a realm; it lives on the control-plane
  Keycloak (the footprint of PTS §7 counts a control-plane Keycloak for SME Sovereigns too, C-26).
* ``add_organization`` is idempotent, so replaying an Organization's creation (R-ORG-03) is harmless.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from catalyst_sim.clock import Clock
from catalyst_sim.control.identity.issuers import (
    ADMIN_REALM,
    ALL_ENVIRONMENTS,
    Environments,
    Issuer,
    TokenPair,
)
from catalyst_sim.model import naming
from catalyst_sim.model.base import CatalystError, NotFoundError

PER_ORGANIZATION = "per-organization"
SHARED_SOVEREIGN = "shared-sovereign"
KEYCLOAK_TOPOLOGIES: tuple[str, ...] = (PER_ORGANIZATION, SHARED_SOVEREIGN)
KeycloakTopology = Literal["per-organization", "shared-sovereign"]

CONTROL_PLANE_KEYCLOAK = "catalyst"


@dataclass
class KeycloakInstance:
    """One Keycloak process: its base URL and the realms it hosts (one failure domain)."""

    name: str
    url: str
    realms: dict[str, Issuer] = field(default_factory=dict)
    available: bool = True

    def set_available(self, available: bool) -> None:
        self.available = available
        for issuer in self.realms.values():
            issuer.available = available


class IdentityTopology:
    """Every issuer of one Sovereign, laid out per its ``keycloakTopology`` (R-SOV-02)."""

    def __init__(self, sovereign_name: str, keycloak_topology: str, clock: Clock, base_url: str | None = None,
                 *, key_size: int = 2048) -> None:
        naming.validate_sovereign_name(sovereign_name, field="sovereign")
        if keycloak_topology not in KEYCLOAK_TOPOLOGIES:
            raise CatalystError.single(f"keycloakTopology {keycloak_topology!r} is not one of "
                                       f"{', '.join(KEYCLOAK_TOPOLOGIES)} (R-SOV-02)", field="spec.keycloakTopology")
        self.sovereign_name = sovereign_name
        self.keycloak_topology = keycloak_topology
        self.clock = clock
        self.base_url = (base_url or f"https://keycloak.{sovereign_name}.invalid").rstrip("/")
        self.key_size = key_size
        self._lock = threading.RLock()
        self._control = KeycloakInstance(CONTROL_PLANE_KEYCLOAK, self.base_url)
        self._keycloaks: dict[str, KeycloakInstance] = {CONTROL_PLANE_KEYCLOAK: self._control}
        self._org_issuers: dict[str, Issuer] = {}
        self._by_url: dict[str, Issuer] = {}
        self._admin = self._add_realm(self._control, ADMIN_REALM, organization=None)

    def __repr__(self) -> str:
        return f"IdentityTopology({self.sovereign_name!r}, {self.keycloak_topology!r})"

    @property
    def per_organization(self) -> bool:
        return self.keycloak_topology == PER_ORGANIZATION

    def _add_realm(self, keycloak: KeycloakInstance, realm: str, organization: str | None) -> Issuer:
        issuer = Issuer(realm, keycloak.url, self.clock, organization=organization, key_size=self.key_size)
        issuer.available = keycloak.available
        keycloak.realms[realm] = issuer
        self._by_url[issuer.url] = issuer
        return issuer

    def add_organization(self, org: str) -> Issuer:
        """Materialize the Org's Keycloak identity (R-ORG-03): its own Keycloak, or a realm in the shared one."""
        naming.validate_org_name(org, field="organization")
        with self._lock:
            if org in self._org_issuers:
                return self._org_issuers[org]
            if self.per_organization:
                keycloak = KeycloakInstance(org, f"{self.base_url}/keycloak/{org}")
                self._keycloaks[org] = keycloak
            else:
                keycloak = self._control
            issuer = self._add_realm(keycloak, org, organization=org)
            self._org_issuers[org] = issuer
            return issuer

    def remove_organization(self, org: str) -> None:
        """Forget an Organization's realm (and its own Keycloak under ``per-organization``) once the Org is gone:
        its issuer is no longer known, so its tokens stop verifying. Removing an unknown Org does nothing."""
        with self._lock:
            issuer = self._org_issuers.pop(org, None)
            if issuer is None:
                return
            self._by_url.pop(issuer.url, None)
            if self.per_organization:
                self._keycloaks.pop(org, None)
            elif self._control.realms.get(issuer.realm) is issuer:
                del self._control.realms[issuer.realm]

    def organizations(self) -> list[str]:
        with self._lock:
            return sorted(self._org_issuers)

    def issuer_for(self, org: str) -> Issuer:
        with self._lock:
            issuer = self._org_issuers.get(org)
        if issuer is None:
            raise NotFoundError(f"Organization {org!r} has no Keycloak realm in Sovereign {self.sovereign_name!r}",
                                object=f"Organization/{org}")
        return issuer

    def sovereign_admin_issuer(self) -> Issuer:
        return self._admin

    def issuers(self) -> list[Issuer]:
        with self._lock:
            return list(self._by_url.values())

    def issuer_by_url(self, url: str) -> Issuer | None:
        """The issuer whose ``iss`` is exactly ``url`` (no normalization: ``iss`` is compared verbatim)."""
        with self._lock:
            return self._by_url.get(url)

    def keycloak_for(self, org: str | None) -> KeycloakInstance:
        """The Keycloak process hosting ``org``'s realm (``None``: the sovereign-admin realm)."""
        if org is None or not self.per_organization:
            if org is not None:
                self.issuer_for(org)
            return self._control
        self.issuer_for(org)
        with self._lock:
            return self._keycloaks[org]

    def keycloaks(self) -> list[KeycloakInstance]:
        with self._lock:
            return list(self._keycloaks.values())

    def set_available(self, org: str | None, available: bool) -> KeycloakInstance:
        """Take the Keycloak hosting ``org``'s realm down or up; returns it so a caller can see the blast radius.

        Under ``per-organization`` only that Org's logins fail (R-ID-04); under ``shared-sovereign`` every
        realm does, because they share one Keycloak (R-ID-05).
        """
        keycloak = self.keycloak_for(org)
        with self._lock:
            keycloak.set_available(available)
        return keycloak

    def login(self, user: str, org: str | None, roles: Iterable[str],
              environments: Environments = ALL_ENVIRONMENTS) -> TokenPair:
        """Log a user in at their realm: ``org=None`` means the sovereign-admin realm (R-ID-06)."""
        issuer = self.sovereign_admin_issuer() if org is None else self.issuer_for(org)
        return issuer.issue(user, org, roles, environments)
