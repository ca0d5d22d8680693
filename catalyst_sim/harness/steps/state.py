"""The read model as people see it: console tabs on the SSE stream and the snapshot API (R-PROJ-03..06).

Tabs are SSE clients of ``/api/v1/environments/{env}/events`` (``harness/sse.py``), authenticated
like every other call. Faults (a projector crash, a NATS restart) are injected through the backend,
the way Toxiproxy injects network faults; a backend that cannot inject them skips the scenario with
that reason. A rogue producer publishes with the Organization's own NATS credentials.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import nats
import pytest
from nats.js.errors import NoStreamResponseError
from pytest_bdd import given, parsers, then, when

from catalyst_sim.harness.context import ScenarioContext
from catalyst_sim.harness.sse import SseClient
from catalyst_sim.harness.steps.runtime import cards

TAB_NAMES = ("first", "second")


@pytest.fixture
def console_tabs() -> Iterator[dict[str, SseClient]]:
    tabs: dict[str, SseClient] = {}
    try:
        yield tabs
    finally:
        for tab in tabs.values():
            tab.close()


def _settle(context: ScenarioContext) -> None:
    settle = getattr(context.backend, "settle", None)
    if settle is not None:
        settle()


def _until(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (after {timeout}s)")
        time.sleep(0.01)


def _fault(context: ScenarioContext, name: str) -> Any:
    action = getattr(context.backend, name, None)
    if action is None:
        pytest.skip(f"backend {context.backend.name} cannot inject this fault ({name})")
    return action


def _history(context: ScenarioContext, app: str, environment: str) -> list[str]:
    response = context.call("GET", f"/api/v1/environments/{environment}/applications/{app}/history")
    assert response.status_code == 200, response.text
    states = [entry["state"] for entry in response.json()["items"]]
    return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]


@given(parsers.parse('two console tabs follow the events of "{environment}"'))
def two_tabs(catalyst: ScenarioContext, console_tabs: dict[str, SseClient], environment: str) -> None:
    for name in TAB_NAMES:
        console_tabs[name] = SseClient(catalyst.endpoints.catalyst_api, f"/api/v1/environments/{environment}/events",
                                       auth=catalyst.api.auth, name=f"tab-{name}").start()
    _until(lambda: all(tab.synced() for tab in console_tabs.values()), "the tabs did not sync")


@then(parsers.parse('both tabs saw every card transition of every Application of "{environment}" as its history'))
def tabs_saw_history(catalyst: ScenarioContext, console_tabs: dict[str, SseClient], environment: str) -> None:
    _settle(catalyst)
    apps = sorted(cards(catalyst, environment))
    assert apps, f"{environment} has no Applications"
    expected = {app: _history(catalyst, app, environment) for app in apps}

    def agree() -> bool:
        return all(tab.card_states(app) == expected[app] for tab in console_tabs.values() for app in apps)

    try:
        _until(agree, "the tabs disagree with the history")
    except AssertionError as exc:
        seen = {name: {app: tab.card_states(app) for app in apps} for name, tab in console_tabs.items()}
        raise AssertionError(f"{exc}: history {expected}, tabs {seen}") from None


@then(parsers.parse('both tabs show the cards the API lists for "{environment}"'))
def tabs_show_api_cards(catalyst: ScenarioContext, console_tabs: dict[str, SseClient], environment: str) -> None:
    _settle(catalyst)
    listed = {app: (card["state"], card["text"]) for app, card in cards(catalyst, environment).items()}

    def shown(tab: SseClient) -> dict[str, tuple[str, str]]:
        _events, state = tab.snapshot()
        return {key.partition("/")[2]: (value["card"]["state"], value["card"]["text"])
                for key, value in state.items() if key.startswith("Application/") and value and value.get("card")}

    _until(lambda: all(shown(tab) == listed for tab in console_tabs.values()),
           f"the tabs do not show {listed}: {[shown(t) for t in console_tabs.values()]}")


@when(parsers.parse('the projector of "{environment}" is killed and restarted'))
def projector_killed(catalyst: ScenarioContext, environment: str) -> None:
    _fault(catalyst, "restart_projector")(environment)


@when("NATS is killed and restarted")
def nats_killed(catalyst: ScenarioContext) -> None:
    _fault(catalyst, "restart_nats")(crash=True)


@then(parsers.parse('the read model of "{environment}" equals a fresh rebuild from its stream'))
def equals_rebuild(catalyst: ScenarioContext, environment: str) -> None:
    _settle(catalyst)
    live = _fault(catalyst, "read_model")(environment)
    rebuilt = _fault(catalyst, "rebuild_read_model")(environment)
    differ = sorted(k for k in live.keys() | rebuilt.keys() if live.get(k) != rebuilt.get(k))
    assert not differ, f"live KV and rebuild differ at {differ[:10]}"
    assert any(k.startswith("Application/") for k in live), f"the read model of {environment} has no Application"


@then(parsers.parse('the card history of "{app}" in "{environment}" is "{listing}"'))
def card_history(catalyst: ScenarioContext, app: str, environment: str, listing: str) -> None:
    _settle(catalyst)
    assert _history(catalyst, app, environment) == [s.strip() for s in listing.split(",")]


def _publish(context: ScenarioContext, organization: str, subject: str, body: bytes) -> str:
    """Publish as a producer in the Organization's NATS account; '' when stored, else the refusal."""
    nats_server = getattr(context.backend, "nats", None)
    if nats_server is None:
        pytest.skip(f"backend {context.backend.name} gives the harness no NATS credentials")

    async def publish() -> str:
        nc = await nats.connect(**nats_server.connect_options(organization))
        try:
            await nc.jetstream(timeout=5).publish(subject, body)
            return ""
        except NoStreamResponseError:
            return "no stream captures it"
        finally:
            await nc.close()

    return asyncio.run(publish())


@when(parsers.parse('a producer in "{organization}" publishes "{raw}" on "{subject}"'))
def publish_raw(catalyst: ScenarioContext, organization: str, raw: str, subject: str) -> None:
    catalyst.state["published"] = _publish(catalyst, organization, subject, raw.encode())


@when(parsers.parse('a producer in "{organization}" publishes a Flux event of Environment "{claimed}" on "{subject}"'))
def publish_foreign(catalyst: ScenarioContext, organization: str, claimed: str, subject: str) -> None:
    envelope = {"specversion": "1.0", "id": f"rogue-{time.time_ns()}", "type": "io.fluxcd.kustomize.reconciled",
                "source": "/rogue", "subject": subject.rsplit(".", 1)[1], "organization": organization,
                "environment": claimed, "data": {"ready": "True", "revision": "x", "reason": "", "message": ""}}
    catalyst.state["published"] = _publish(catalyst, organization, subject, json.dumps(envelope).encode())


@then(parsers.parse('the publish is refused because {reason}'))
def publish_refused(catalyst: ScenarioContext, reason: str) -> None:
    assert catalyst.state.get("published") == reason, catalyst.state.get("published")


@then(parsers.parse('"{environment}" lists a parked event mentioning "{text}"'))
def parked_mentioning(catalyst: ScenarioContext, environment: str, text: str) -> None:
    _settle(catalyst)
    response = catalyst.call("GET", f"/api/v1/environments/{environment}/parked")
    assert response.status_code == 200, response.text
    reasons = [item["reason"] for item in response.json()["items"]]
    assert any(text in reason for reason in reasons), reasons
