"""What a backend hands the harness: the wire-protocol ports (DESIGN.md §1).

Steps and the control plane use ordinary clients against these endpoints, whichever backend
produced them. A component a backend does not provide is ``None`` and the scenarios that need it
are skipped with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Component:
    """One row of the realism ledger: the real server, our emulator of it, or the reference
    control plane (catalyst-sim's own implementation of Catalyst, which is what is under test)."""

    name: str
    real: bool
    implementation: str
    version: str = ""
    url: str = ""
    reference: bool = False

    @property
    def kind(self) -> str:
        if self.reference:
            return "reference"
        return "real" if self.real else "emulated"


@dataclass
class Endpoints:
    catalyst_api: str
    gitea_url: str
    gitea_token: str
    gitea_admin: str = "catalyst-admin"
    nats_url: str | None = None
    openbao_url: str | None = None
    openbao_token: str | None = None
    toxiproxy_url: str | None = None
    keycloak_url: str | None = None  # the Sovereign's Keycloak (realms at /realms/{realm})
    kubeconfigs: dict[str, Path] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)
