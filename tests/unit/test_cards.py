"""Card states and their precedence (R-CARD-01..03, D-09)."""

import pytest

from catalyst_sim.control.cards import CardInputs, CardState, derive_card

RUNNING = CardInputs(ready=True, reason="ReconciliationSucceeded", ever_ready=True, ready_pods=2, desired_pods=2)


@pytest.mark.parametrize(("inputs", "state"), [
    (RUNNING, CardState.RUNNING),
    (CardInputs(ready=None), CardState.INSTALLING),
    (CardInputs(ready=False, reason="DependencyNotReady", message="dependency 'db' is not ready"),
     CardState.INSTALLING),
    (CardInputs(ready=False, reason="HealthCheckFailed", message="ImagePullBackOff"), CardState.FAILED),
    (CardInputs(ready=True, ever_ready=True, applied_is_head=False, ready_pods=2, desired_pods=2),
     CardState.UPDATING),
    (CardInputs(ready=True, ever_ready=True, ready_pods=3, desired_pods=5), CardState.DEGRADED),
    (CardInputs(ready=False, reason="SomethingOdd", ever_ready=True), CardState.DEGRADED),
])
def test_each_state_from_its_inputs(inputs: CardInputs, state: CardState) -> None:
    assert derive_card(inputs).state is state


def test_degraded_text_counts_unhealthy_pods() -> None:
    card = derive_card(CardInputs(ready=True, ever_ready=True, ready_pods=3, desired_pods=5))
    assert card.text == "3/5 pods, 2 unhealthy"
    assert card.label == "◒ Degraded"


def test_precedence_paused_beats_failed_beats_pending_approval_beats_installing() -> None:
    everything = CardInputs(ready=False, reason="InstallFailed", paused=True, pending_approval=True)
    assert derive_card(everything).state is CardState.PAUSED
    assert derive_card(CardInputs(ready=False, reason="InstallFailed", pending_approval=True)).state \
        is CardState.FAILED
    assert derive_card(CardInputs(ready=None, pending_approval=True)).state is CardState.PENDING_APPROVAL


def test_every_state_has_its_documented_glyph() -> None:
    assert {s.value: s.glyph for s in CardState} == {
        "Running": "●", "Installing": "◐", "Updating": "◑", "Degraded": "◒", "Failed": "◓", "Paused": "○",
        "Pending approval": "◔"}
