"""A promotion as the API shows it: the pull request, who asked for it, and its gate verdicts.

There is no promotion object in Catalyst (R-PROMO-01: "no promotion engine, chain object or
PromotionPolicy"): the pull request in the App repo *is* the promotion. This record only remembers
what the pull request cannot say — the Catalyst user who asked for it (the PR is opened by the
control plane's Gitea user, see the service) — and the last gate report, so a merged promotion keeps
the verdicts it merged under.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from catalyst_sim.control.policy import GateReport
from catalyst_sim.control.promotion.inputs import ReScore

PromotionState = Literal["open", "merged", "closed"]
Key = tuple[str, str, int]  # (organization, app, pull request number)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of the gates: the report and the facts worth showing next to it."""

    report: GateReport
    head_sha: str
    ready_since: dict[str, str]  # Environment -> when the head commit first became Ready there (RFC 3339)
    re_score: ReScore

    def as_dict(self) -> dict[str, Any]:
        return {"gates": self.report.as_dict(),
                "candidate": {"commit": self.head_sha, "readySince": dict(self.ready_since)},
                "reScore": self.re_score.as_dict()}


@dataclass
class Promotion:
    organization: str
    application: str
    number: int
    source: str
    destination: str
    head_branch: str
    base_branch: str
    author: str
    opened_at: datetime
    url: str = ""
    via: Literal["catalyst-api", "gitea"] = "catalyst-api"
    state: PromotionState = "open"
    merged_at: str | None = None
    merge_commit: str | None = None
    merge_error: str | None = None
    last: Evaluation | None = field(default=None, repr=False)

    @property
    def key(self) -> Key:
        return (self.organization, self.application, self.number)

    @property
    def repository(self) -> str:
        return f"{self.organization}/{self.application}"

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    def as_dict(self, evaluation: Evaluation | None = None) -> dict[str, Any]:
        shown = evaluation or self.last
        view: dict[str, Any] = {
            "id": f"{self.repository}#{self.number}", "organization": self.organization,
            "application": self.application, "from": self.source, "to": self.destination,
            "author": self.author, "openedVia": self.via, "openedAt": self.opened_at.isoformat(),
            "state": self.state, "pendingApproval": self.is_open,
            "pullRequest": {"repository": self.repository, "number": self.number, "head": self.head_branch,
                            "base": self.base_branch, "url": self.url, "mergeCommitSha": self.merge_commit,
                            "mergedAt": self.merged_at},
            "mergeError": self.merge_error,
        }
        if shown is not None:
            view.update(shown.as_dict())
        return view
