"""What the gates look at besides the pull request: soak history, RE scores and team members.

Pure parts of the promotion service, kept apart so they can be tested without a Sovereign:

* :class:`SoakLedger` remembers when each commit of an App first became Ready in each Environment,
  from the GitOps engine's Kustomization events (``data.revision`` = ``"<branch>@sha1:<sha>"``). That
  instant is where a soak starts (D-11): keyed by commit, so a new commit starts from zero. An
  Environment realized by several vclusters counts a commit Ready once it is Ready in every vcluster
  that reports the App (the last of them decides).
* :func:`parse_re_score` reads the RE Scorecard result the scenario (or a real scorecard job)
  commits to ``system/policy-bundle/re-scores/{org}/{app}.yaml`` (R-PROMO-04, D-10).
* :class:`Teams` is a team directory with Gitea's case-insensitive team names: a policy naming
  ``owners`` means the Org's ``Owners`` team, as Gitea resolves it (R-PROMO-03).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

RE_SCORE_REPO = "policy-bundle"
RE_SCORE_DIR = "re-scores"


def re_score_path(organization: str, app: str) -> str:
    """Where the RE Scorecard result of one App lives in ``system/policy-bundle``."""
    return f"{RE_SCORE_DIR}/{organization}/{app}.yaml"


@dataclass(frozen=True)
class ReScore:
    """An App's RE score (0..100), or ``None`` with the reason when none can be used."""

    score: int | None
    source: str = ""
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "source": self.source, "problem": self.problem}


def parse_re_score(text: str | None, source: str) -> ReScore:
    """``score: 79`` -> 79. A missing file is "no score"; a malformed one is no score *with a problem*,
    so the gate fails closed and the API says why (a typo never passes a blocking gate)."""
    if text is None:
        return ReScore(None, source)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return ReScore(None, source, f"{source} is not valid YAML: {exc}")
    score = document.get("score") if isinstance(document, dict) else None
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
        return ReScore(None, source, f"{source} must hold 'score: <integer 0..100>', found {score!r}")
    return ReScore(score, source)


def parse_revision(revision: str) -> tuple[str, str]:
    """``"staging@sha1:abc"`` -> ``("staging", "abc")``; a bare sha has no branch."""
    ref, _, digest = revision.rpartition("@")
    sha = digest.split(":", 1)[-1]
    return ref, sha


class SoakLedger:
    """First-Ready instants per (Organization, App, Environment, commit), fed by Flux events (D-11)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (org, app, env) -> sha -> vcluster -> first Ready instant
        self._ready: dict[tuple[str, str, str], dict[str, dict[str, datetime]]] = {}
        self._vclusters: dict[tuple[str, str, str], set[str]] = {}

    def record(self, organization: str, app: str, environment: str, vcluster: str, sha: str,
               at: datetime) -> bool:
        """Note that ``sha`` is Ready in one vcluster; True when that is news (its first time there)."""
        key = (organization, app, environment)
        with self._lock:
            self._vclusters.setdefault(key, set()).add(vcluster)
            seen = self._ready.setdefault(key, {}).setdefault(sha, {})
            if vcluster in seen:
                return False
            seen[vcluster] = at
            return True

    def first_ready(self, organization: str, app: str) -> dict[str, dict[str, datetime]]:
        """Environment -> commit -> when it first was Ready in every vcluster of that Environment."""
        out: dict[str, dict[str, datetime]] = {}
        with self._lock:
            for (org, name, environment), commits in self._ready.items():
                if (org, name) != (organization, app):
                    continue
                vclusters = self._vclusters[(org, name, environment)]
                for sha, seen in commits.items():
                    if vclusters <= seen.keys():
                        out.setdefault(environment, {})[sha] = max(seen.values())
        return out

    def clear(self) -> None:
        with self._lock:
            self._ready.clear()
            self._vclusters.clear()


class Teams(Mapping[str, Collection[str]]):
    """One Organization's teams -> member logins, looked up case-insensitively like Gitea does."""

    def __init__(self, members: Mapping[str, Collection[str]]) -> None:
        self._names = {name.casefold(): name for name in members}
        self._members = {name.casefold(): frozenset(m) for name, m in members.items()}

    def __getitem__(self, team: str) -> Collection[str]:
        return self._members[team.casefold()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._names)


class TeamDirectory(Mapping[str, Teams]):
    """Organization -> :class:`Teams`, fetched on first use and kept for one evaluation.

    The policy loader and the gates only ask for the Organizations they meet, so a Sovereign with
    many Organizations costs only the lookups one evaluation needs. An Organization that does not
    exist in Gitea has no teams.
    """

    def __init__(self, organizations: Collection[str], fetch: Callable[[str], Mapping[str, Collection[str]] | None]
                 ) -> None:
        self._organizations = tuple(organizations)
        self._fetch = fetch
        self._cache: dict[str, Teams | None] = {}

    def __getitem__(self, organization: str) -> Teams:
        if organization not in self._cache:
            found = self._fetch(organization)
            self._cache[organization] = None if found is None else Teams(found)
        teams = self._cache[organization]
        if teams is None:
            raise KeyError(organization)
        return teams

    def __iter__(self) -> Iterator[str]:
        return iter(self._organizations)

    def __len__(self) -> int:
        return len(self._organizations)
