"""Keycloak topologies: per-organization (R-ID-04) and shared-sovereign (R-ID-05), switched only by R-SOV-02."""

from __future__ import annotations

import pytest

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.identity import Authenticator, IdentityTopology
from catalyst_sim.model.base import CatalystError

from .conftest import bearer


def test_per_organization_gives_every_org_its_own_keycloak_and_realm(per_org: IdentityTopology) -> None:
    acme, bank = per_org.issuer_for("acme"), per_org.issuer_for("bankdhofar")
    assert acme.realm == "acme" and bank.realm == "bankdhofar"
    assert acme.url == "https://keycloak.omantel.example/keycloak/acme/realms/acme"
    assert bank.url == "https://keycloak.omantel.example/keycloak/bankdhofar/realms/bankdhofar"
    assert acme.kid != bank.kid, "separate Keycloaks have separate signing keys"
    assert per_org.keycloak_for("acme") is not per_org.keycloak_for("bankdhofar")
    assert sorted(k.name for k in per_org.keycloaks()) == ["acme", "bankdhofar", "catalyst"]


def test_per_organization_outage_of_org_a_leaves_org_b_untouched(per_org: IdentityTopology,
                                                                 clock: VirtualClock) -> None:
    """R-ID-04: Org A's Keycloak outage MUST NOT affect Org B."""
    auth = Authenticator(per_org, clock)
    earlier = per_org.login("alice", "acme", ["org-viewer"])
    down = per_org.set_available("acme", False)
    assert list(down.realms) == ["acme"]
    with pytest.raises(CatalystError, match="unavailable") as err:
        per_org.login("alice", "acme", ["org-viewer"])
    assert err.value.code == "Upstream"
    with pytest.raises(CatalystError, match="unavailable"):
        per_org.issuer_for("acme").refresh(earlier.refresh_token)
    bank = per_org.login("bob", "bankdhofar", ["org-developer"])
    assert auth.authenticate(bearer(bank.access_token)).org == "bankdhofar"
    per_org.issuer_for("bankdhofar").refresh(bank.refresh_token)
    per_org.login("root", None, ["sovereign-admin"])
    # A token acme already holds still verifies offline (cached JWKS) until it expires.
    assert auth.authenticate(bearer(earlier.access_token)).user == "alice"
    per_org.set_available("acme", True)
    per_org.login("alice", "acme", ["org-viewer"])


def test_shared_sovereign_is_one_keycloak_with_admin_and_org_realms(shared: IdentityTopology) -> None:
    """R-ID-05: one Keycloak, realm catalyst-admin plus one realm per Org."""
    base = "https://keycloak.bankdhofar-sov.example"
    assert [k.name for k in shared.keycloaks()] == ["catalyst"]
    assert sorted(shared.keycloak_for(None).realms) == ["acme", "bankdhofar", "catalyst-admin"]
    assert shared.sovereign_admin_issuer().url == f"{base}/realms/catalyst-admin"
    assert shared.issuer_for("acme").url == f"{base}/realms/acme"
    assert shared.issuer_for("bankdhofar").url == f"{base}/realms/bankdhofar"
    assert len({i.kid for i in shared.issuers()}) == 3, "every realm signs with its own key"


def test_shared_sovereign_outage_takes_every_realm_down(shared: IdentityTopology) -> None:
    """The documented trade-off of R-ID-05: one Keycloak is one failure domain."""
    shared.set_available("acme", False)
    for org in ("acme", "bankdhofar", None):
        with pytest.raises(CatalystError, match="unavailable"):
            shared.login("u", org, ["sovereign-admin"] if org is None else ["org-viewer"])
    shared.set_available("acme", True)
    shared.login("u", "bankdhofar", ["org-viewer"])


def test_a_realm_added_later_starts_with_its_keycloak_state(shared: IdentityTopology) -> None:
    shared.set_available(None, False)
    assert not shared.add_organization("gulfbank").available


def test_add_organization_is_idempotent_and_validates_the_name(per_org: IdentityTopology) -> None:
    assert per_org.add_organization("acme") is per_org.issuer_for("acme")
    assert per_org.organizations() == ["acme", "bankdhofar"]
    with pytest.raises(CatalystError, match="reserved"):
        per_org.add_organization("catalyst-admin")
    with pytest.raises(CatalystError):
        per_org.add_organization("Not_An_Org")


def test_unknown_org_and_unknown_topology(per_org: IdentityTopology, clock: VirtualClock) -> None:
    with pytest.raises(CatalystError, match="no Keycloak realm") as err:
        per_org.login("x", "nobody", ["org-viewer"])
    assert err.value.code == "NotFound"
    with pytest.raises(CatalystError, match="keycloakTopology") as bad:
        IdentityTopology("omantel", "per-org", clock)
    assert bad.value.problems[0].field == "spec.keycloakTopology"


def test_issuer_lookup_is_by_exact_iss(per_org: IdentityTopology) -> None:
    acme = per_org.issuer_for("acme")
    assert per_org.issuer_by_url(acme.url) is acme
    assert per_org.issuer_by_url(acme.url + "/") is None
    assert per_org.issuer_by_url("https://keycloak.omantel.example/realms/acme") is None
