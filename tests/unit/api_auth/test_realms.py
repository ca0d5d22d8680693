"""An Organization's realm goes with the Organization: its tokens stop verifying (R-ORG-03, R-ID-04/05)."""

from __future__ import annotations

import pytest

from catalyst_sim.control.identity import Authenticator, IdentityTopology
from catalyst_sim.model.base import CatalystError, NotFoundError

from .conftest import ORGS


def test_a_removed_orgs_tokens_are_refused_and_others_keep_working(topology: IdentityTopology) -> None:
    auth = Authenticator(topology, topology.clock)
    acme = topology.login("layla", "acme", ["org-developer"]).access_token
    bank = topology.login("ahmed", "bankdhofar", ["org-admin"]).access_token
    topology.remove_organization("acme")
    try:
        with pytest.raises(CatalystError, match="unknown issuer"):
            auth.authenticate(f"Bearer {acme}")
        assert auth.authenticate(f"Bearer {bank}").user == "ahmed"
        with pytest.raises(NotFoundError):
            topology.issuer_for("acme")
        assert topology.organizations() == ["bankdhofar"]
        topology.remove_organization("acme")  # removing twice is harmless
        assert all(realm != "acme" for k in topology.keycloaks() for realm in k.realms)
    finally:
        topology.add_organization("acme")  # the module's topology is shared by the other tests
    assert topology.organizations() == sorted(ORGS)
    with pytest.raises(CatalystError, match=r"unknown issuer|does not publish"):
        auth.authenticate(f"Bearer {acme}")  # a new realm has a new key: the old token stays dead
