"""Application card states (R-CARD-01..03, decision D-09).

One pure function turns what is known about an Application in one Environment into the state a
person sees on its card. The same function serves every surface, so two tabs can never disagree
(R-PROJ-05). Precedence when several states apply, per D-09:
Paused > Failed > Pending approval > Installing > Updating > Degraded > Running.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CardState(StrEnum):
    RUNNING = "Running"
    INSTALLING = "Installing"
    UPDATING = "Updating"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    PAUSED = "Paused"
    PENDING_APPROVAL = "Pending approval"

    @property
    def glyph(self) -> str:
        return GLYPHS[self]


PRECEDENCE = (CardState.PAUSED, CardState.FAILED, CardState.PENDING_APPROVAL, CardState.INSTALLING,
              CardState.UPDATING, CardState.DEGRADED, CardState.RUNNING)  # D-09, strongest first

GLYPHS = {
    CardState.RUNNING: "●", CardState.INSTALLING: "◐", CardState.UPDATING: "◑", CardState.DEGRADED: "◒",
    CardState.FAILED: "◓", CardState.PAUSED: "○", CardState.PENDING_APPROVAL: "◔",
}

# Flux/Helm reasons that mean the install or upgrade itself failed (R-CARD-02 "Failed").
FAILURE_REASONS = frozenset({"InstallFailed", "UpgradeFailed", "ChartPullError", "ChartLoadError", "ArtifactFailed",
                             "BuildFailed", "HealthCheckFailed"})
# Reasons that mean "still working on it", never a failure (R-FLUX-03: a dependent waiting is pending).
PROGRESS_REASONS = frozenset({"Progressing", "DependencyNotReady", "Reconciling", "ProgressingWithRetry", ""})


@dataclass(frozen=True)
class CardInputs:
    """What the read model knows about one Application in one Environment."""

    ready: bool | None  # the Kustomization's Ready condition (None: not reconciled yet)
    reason: str = ""
    message: str = ""
    ever_ready: bool = False  # some revision of this App has been Ready in this Environment
    applied_is_head: bool = True  # the last applied revision is the branch head
    ready_pods: int = 0
    desired_pods: int = 0
    paused: bool = False
    pending_approval: bool = False


@dataclass(frozen=True)
class Card:
    state: CardState
    text: str

    @property
    def label(self) -> str:
        return f"{self.state.glyph} {self.state.value}"


def derive_card(inputs: CardInputs) -> Card:
    if inputs.paused:
        return Card(CardState.PAUSED, "Flux suspended, scaled to zero")
    if inputs.ready is False and inputs.reason in FAILURE_REASONS:
        return Card(CardState.FAILED, inputs.message or inputs.reason)
    if inputs.pending_approval:
        return Card(CardState.PENDING_APPROVAL, "a promotion pull request awaits reviewers")
    if not inputs.ever_ready:
        return Card(CardState.INSTALLING, inputs.message or "installing")
    if inputs.ready is not True or not inputs.applied_is_head:
        if inputs.ready is False and inputs.reason not in PROGRESS_REASONS:
            # Ready=False with an unrecognized reason maps to Degraded (helmwatch precedent, R-CARD-02).
            return Card(CardState.DEGRADED, inputs.message or inputs.reason)
        return Card(CardState.UPDATING, inputs.message or "applying a newer revision")
    if 0 < inputs.ready_pods < inputs.desired_pods:
        unhealthy = inputs.desired_pods - inputs.ready_pods
        return Card(CardState.DEGRADED, f"{inputs.ready_pods}/{inputs.desired_pods} pods, {unhealthy} unhealthy")
    if inputs.desired_pods:
        return Card(CardState.RUNNING, f"{inputs.ready_pods}/{inputs.desired_pods} pods")
    return Card(CardState.RUNNING, inputs.message or "ready")
