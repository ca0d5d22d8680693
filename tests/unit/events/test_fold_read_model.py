"""The fold's additions for the wired read side, as pure functions (no NATS): pull requests make
Pending approval (R-PROMO-08, D-09), a multi-vcluster Environment shows its worst vcluster, a Running
card names the revision it runs, and bad pull-request envelopes are parked with the field named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from catalyst_sim.control.events.publisher import GIT_PULL_TYPE
from catalyst_sim.control.projector.fold import Event, Folder, ParkedEvent, decode

ENV = "acme-prod"


class Fold:
    def __init__(self) -> None:
        self.folder = Folder(ENV)
        self.state: dict[str, dict[str, Any]] = {}
        self.seq = 0

    def apply(self, subject: str, envelope: dict[str, Any]) -> None:
        self.seq += 1
        event = decode(self.seq, subject, json.dumps(envelope).encode(), ENV)
        self.state.update(self.folder.plan(event, self.state))

    def card(self, app: str) -> dict[str, Any]:
        return dict(self.state[f"Application/{app}"]["card"])


def flux(app: str, ready: str, reason: str, *, vcluster: str = "acme", revision: str = "main@sha1:aaaaaaa",
         message: str = "") -> tuple[str, dict[str, Any]]:
    outcome = "reconciled" if ready == "True" else ("failed" if ready == "False" else "progressing")
    return f"ws.{ENV}.flux.{app}", {
        "specversion": "1.0", "id": f"{vcluster}-{app}-{ready}-{revision}", "type": f"io.fluxcd.kustomize.{outcome}",
        "subject": app, "environment": ENV, "organization": "acme", "vcluster": vcluster,
        "data": {"ready": ready, "reason": reason, "message": message, "revision": revision}}


def pull(app: str, number: int, *, open: bool, base: str = "main") -> tuple[str, dict[str, Any]]:
    return f"ws.{ENV}.git.abcdef1", {
        "specversion": "1.0", "id": f"pull-{app}-{number}-{open}", "type": GIT_PULL_TYPE, "subject": f"{app}#{number}",
        "environment": ENV, "organization": "acme",
        "data": {"repository": {"name": app}, "number": number, "open": open, "base": base, "head": "abcdef1"}}


def test_an_open_pull_request_into_the_branch_is_pending_approval_until_it_closes() -> None:
    fold = Fold()
    fold.apply(*flux("orders-db", "True", "ReconciliationSucceeded"))
    assert fold.card("orders-db")["state"] == "Running"
    fold.apply(*pull("orders-db", 7, open=True))
    assert fold.card("orders-db")["state"] == "Pending approval"
    fold.apply(*pull("orders-db", 7, open=True))  # a replayed webhook changes nothing
    assert fold.state["PullRequest/orders-db"]["open"] == [7]
    fold.apply(*pull("orders-db", 8, open=True, base="staging"))  # into another Environment's branch
    assert fold.state["PullRequest/orders-db"]["open"] == [7]
    fold.apply(*pull("orders-db", 7, open=False))
    assert fold.card("orders-db")["state"] == "Running"


def test_failed_outranks_pending_approval_d09() -> None:
    fold = Fold()
    fold.apply(*pull("shop", 1, open=True))
    assert fold.card("shop")["state"] == "Pending approval"  # known from the PR alone
    fold.apply(*flux("shop", "False", "InstallFailed", message="chart broke"))
    assert fold.card("shop")["state"] == "Failed"


def test_an_environment_on_two_vclusters_shows_its_worst_vcluster() -> None:
    fold = Fold()
    fold.apply(*flux("blog", "True", "ReconciliationSucceeded", vcluster="acme-fsn"))
    fold.apply(*flux("blog", "False", "HealthCheckFailed", vcluster="acme-nbg", message="ImagePullBackOff"))
    fold.apply(*flux("blog", "True", "ReconciliationSucceeded", vcluster="acme-fsn", revision="main@sha1:bbbbbbb"))
    card = fold.card("blog")
    assert (card["state"], card["text"]) == ("Failed", "ImagePullBackOff")  # the later fsn success hides nothing
    fold.apply(*flux("blog", "True", "ReconciliationSucceeded", vcluster="acme-nbg", revision="main@sha1:bbbbbbb"))
    assert fold.card("blog")["state"] == "Running"


def test_a_running_card_with_pods_names_the_revision_it_runs() -> None:
    fold = Fold()
    fold.apply(*flux("blog", "True", "ReconciliationSucceeded", revision="main@sha1:c0ffee1"))
    fold.apply(f"ws.{ENV}.k8s.Deployment.blog.blog", {
        "specversion": "1.0", "id": "k8s-1", "type": "io.k8s.object.added", "subject": "blog/blog",
        "environment": ENV, "organization": "acme", "vcluster": "acme",
        "data": {"kind": "Deployment", "namespace": "blog", "name": "blog", "eventType": "ADDED",
                 "object": {"metadata": {"name": "blog", "labels": {"kustomize.toolkit.fluxcd.io/name": "blog"}},
                            "spec": {"replicas": 2}, "status": {"readyReplicas": 2}}}})
    assert fold.card("blog")["text"] == "2/2 pods at main@sha1:c0ffee1"


@pytest.mark.parametrize(("data", "reason"), [
    ({"repository": {"name": "shop"}, "number": "7", "open": True, "base": "main"}, "data.number"),
    ({"repository": {"name": "shop"}, "number": 7, "open": "yes", "base": "main"}, "data.open"),
    ({"repository": {"name": "shop"}, "number": 7, "open": True}, "data.base"),
    ({"number": 7, "open": True, "base": "main"}, "repository.name"),
])
def test_a_bad_pull_request_envelope_is_parked_naming_the_field(data: dict[str, Any], reason: str) -> None:
    subject, envelope = pull("shop", 7, open=True)
    envelope["data"] = data
    with pytest.raises(ParkedEvent, match=reason.replace(".", r"\.")):
        decode(1, subject, json.dumps(envelope).encode(), ENV)


def test_a_non_string_vcluster_extension_is_parked() -> None:
    subject, envelope = flux("blog", "True", "ReconciliationSucceeded")
    envelope["vcluster"] = 3
    with pytest.raises(ParkedEvent, match="vcluster"):
        decode(1, subject, json.dumps(envelope).encode(), ENV)
    assert isinstance(decode(1, *flux("blog", "True", "")[:1], json.dumps(flux("blog", "True", "")[1]).encode(),
                             ENV), Event)
