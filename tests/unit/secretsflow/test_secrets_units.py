"""Pure parts of the secrets flow: SVID time bridge and rotation, ExternalSecret parsing, Reloader, cards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.gitops.health import external_secret_status
from catalyst_sim.control.identity.svid import SvidAgent, SvidError, SvidIssuer, spiffe_id
from catalyst_sim.control.secrets import spec as es_spec
from catalyst_sim.control.secrets.controller import SyncStatus
from catalyst_sim.control.secrets.reloader import consumes, recorded_hashes
from catalyst_sim.control.secrets.service import SecretsService, credentials_path


def test_spiffe_ids_follow_r_name_19_and_reject_bad_parts() -> None:
    assert spiffe_id("omantel", "muscatpharmacy", "wordpress") == "spiffe://omantel/ns/muscatpharmacy/sa/wordpress"
    with pytest.raises(SvidError, match="namespace 'Bad_NS'"):
        spiffe_id("omantel", "Bad_NS", "sa")


def test_the_jwt_carries_the_remaining_virtual_life_on_the_wall_clock() -> None:
    clock = VirtualClock()
    issuer = SvidIssuer("omantel", clock)
    svid = issuer.issue("acme", "external-secrets")
    fresh = svid.claims(clock.now(), wall_now=1_000_000.0)
    assert (fresh["iat"], fresh["exp"], fresh["aud"]) == (1_000_000, 1_000_300, ["openbao"])
    clock.advance(timedelta(minutes=6))
    stale = svid.claims(clock.now(), wall_now=1_000_001.0)
    assert stale["exp"] == 1_000_001 - 60  # a minute in OpenBao's past: it will refuse the token
    decoded = jwt.decode(svid.token(clock.now()), options={"verify_signature": False, "verify_exp": False})
    assert decoded["sub"] == "spiffe://omantel/ns/acme/sa/external-secrets"
    assert jwt.get_unverified_header(svid.token(clock.now()))["kid"] == issuer.jwks()["keys"][0]["kid"]


def test_the_agent_reissues_at_half_life_on_the_clock_and_stops_cleanly() -> None:
    clock = VirtualClock()
    agent = SvidAgent(SvidIssuer("omantel", clock), "acme", "external-secrets").start()
    first = agent.current()
    clock.advance(timedelta(minutes=2, seconds=29))
    assert agent.current() is first
    clock.advance(timedelta(seconds=1))
    assert agent.current().serial == first.serial + 1 and not agent.current().expired(clock.now())
    agent.stop()
    assert clock.pending_timers() == 0


def _es(spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "creds", "namespace": "blog"}, "spec": spec}


STORE = {"kind": "ClusterSecretStore", "name": "openbao"}


@pytest.mark.parametrize(("spec", "field"), [
    (None, "spec"),
    ({"secretStoreRef": STORE, "refreshInterval": "soon", "data": []}, "spec.refreshInterval"),
    ({"data": [{"secretKey": "a", "remoteRef": {"key": "org/a/env/dev/x"}}]}, "spec.secretStoreRef"),
    ({"secretStoreRef": STORE, "data": []}, "spec.data"),
    ({"secretStoreRef": STORE, "data": [{"secretKey": "a b", "remoteRef": {"key": "org/x"}}]},
     "spec.data[0].secretKey"),
    ({"secretStoreRef": STORE, "data": [{"secretKey": "a", "remoteRef": {"key": "org/../x"}}]},
     "spec.data[0].remoteRef.key"),
    ({"secretStoreRef": STORE, "data": [{"secretKey": "a", "remoteRef": {"key": "org/x", "version": "v2"}}]},
     "spec.data[0].remoteRef.version"),
    ({"secretStoreRef": STORE, "dataFrom": [{"find": {}}]}, "spec.dataFrom[0]"),
    ({"secretStoreRef": STORE, "target": {"name": "Bad"}, "data": [{"secretKey": "a", "remoteRef": {"key": "o/x"}}]},
     "spec.target.name"),
])
def test_malformed_external_secrets_name_the_object_and_the_field(spec: Any, field: str) -> None:
    with pytest.raises(es_spec.SpecError) as caught:
        es_spec.parse(_es(spec))
    assert caught.value.field == field and str(caught.value).startswith(f"ExternalSecret blog/creds: {field}:")


def test_a_valid_external_secret_is_parsed_with_eso_defaults() -> None:
    parsed = es_spec.parse(_es({"secretStoreRef": STORE, "data": [
        {"secretKey": "password", "remoteRef": {"key": "/org/acme/env/dev/blog/credentials/", "property": "password"}}],
        "dataFrom": [{"extract": {"key": "org/acme/env/dev/blog/extra"}}]}))
    assert (parsed.target, parsed.refresh_seconds, parsed.store) == ("creds", 3600.0, ("ClusterSecretStore", "openbao"))
    assert [r.key for r in parsed.refs] == ["org/acme/env/dev/blog/credentials", "org/acme/env/dev/blog/extra"]


def test_reloader_finds_every_way_a_deployment_consumes_a_secret() -> None:
    def deployment(pod: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
        return {"spec": {"template": {"metadata": {"annotations": annotations or {}}, "spec": pod}}}

    env = {"containers": [{"name": "c", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "s"}}}]}]}
    env_from = {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]}
    volume = {"containers": [{"name": "c"}], "volumes": [{"name": "v", "secret": {"secretName": "s"}}]}
    for pod in (env, env_from, volume):
        assert consumes(deployment(pod), "s") and not consumes(deployment(pod), "other")
    marked = deployment(env, {"reloader.catalyst.openova.io/secret-hashes": '{"s":"abc"}'})
    assert recorded_hashes(marked) == {"s": "abc"} and recorded_hashes(deployment(env)) == {}


def test_credentials_paths_are_below_the_environment_root() -> None:
    assert credentials_path("acme", "dev", "blog") == "org/acme/env/dev/blog/credentials"
    with pytest.raises(ValueError, match="Organization"):
        credentials_path("Acme", "dev", "blog")


def test_a_running_card_turns_degraded_while_an_external_secret_is_not_ready() -> None:
    clock = VirtualClock()
    service = SecretsService(sovereign="omantel", clock=clock, openbao=None, issuer=SvidIssuer("omantel", clock))  # type: ignore[arg-type]
    running = {"state": "Running", "glyph": "●", "text": "2/2 pods"}
    failed = {"state": "Failed", "glyph": "◓", "text": "ImagePullBackOff"}
    service._observe(SyncStatus("vc", "acme-dev", "blog", "blog", "smtp", False, "SecretSyncedError", "not found"))
    degraded = service.card("acme-dev", "blog", running)
    assert (degraded["state"], degraded["glyph"]) == ("Degraded", "◒") and "blog/smtp" in degraded["text"]
    assert service.card("acme-dev", "blog", failed) == failed  # a stronger state wins (D-09)
    assert service.card("acme-dev", "shop", running) == running
    service._observe(SyncStatus("vc", "acme-dev", "blog", "blog", "smtp", True, "SecretSynced", ""))
    assert service.card("acme-dev", "blog", running) == running


def test_flux_health_follows_kstatus_for_external_secrets() -> None:
    not_ready = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "SecretSyncedError"}]}}
    assert external_secret_status(not_ready) == ("Current", "")
    stalled = {"status": {"conditions": [{"type": "Stalled", "status": "True", "message": "x"}]}}
    assert external_secret_status(stalled) == ("Failed", "x")
