"""Shared identity fixtures: a virtual clock and one Sovereign per Keycloak topology (R-SOV-02).

Organizations: ``acme`` and ``bankdhofar``. Every instant comes from the virtual clock, so token
lifetimes (R-ID-02) are crossed by advancing it, never by sleeping.
"""

from __future__ import annotations

import pytest

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.identity import Authenticator, IdentityTopology

ORGS = ("acme", "bankdhofar")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def make_topology(kind: str, clock: VirtualClock, sovereign: str = "omantel") -> IdentityTopology:
    topology = IdentityTopology(sovereign, kind, clock, f"https://keycloak.{sovereign}.example")
    for org in ORGS:
        topology.add_organization(org)
    return topology


@pytest.fixture(params=["per-organization", "shared-sovereign"])
def topology(request: pytest.FixtureRequest, clock: VirtualClock) -> IdentityTopology:
    return make_topology(request.param, clock)


@pytest.fixture
def per_org(clock: VirtualClock) -> IdentityTopology:
    return make_topology("per-organization", clock)


@pytest.fixture
def shared(clock: VirtualClock) -> IdentityTopology:
    return make_topology("shared-sovereign", clock, sovereign="bankdhofar-sov")


@pytest.fixture
def auth(topology: IdentityTopology, clock: VirtualClock) -> Authenticator:
    return Authenticator(topology, clock)


def bearer(token: str) -> str:
    return f"Bearer {token}"
