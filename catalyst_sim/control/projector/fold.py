"""The projector's pure part: decode one stream message and fold it into KV records.

No I/O here, so the rules can be read (and reasoned about) on their own:

* **Keys** are ``<kind>/<name>`` (R-NAME-17, raw names per D-04):
  ``Application/<app>`` (the card and what it is derived from), ``ApplicationHistory/<app>``
  (bounded list of card transitions), ``Environment/<env>`` (summary), ``Repository/<app>`` (the
  branch head learned from Gitea pushes), ``PullRequest/<app>`` (the open pull requests into this
  Environment's branch: a promotion awaiting reviewers shows as Pending approval, R-PROMO-08),
  ``GitRepository/<name>`` (Flux source outcomes) and ``Parked/<stream-seq>`` (a message that could
  not be projected, with the reason).
* **Idempotence under redelivery**: every record carries ``seq``, the stream sequence of the last
  event applied to it. An event with ``seq <= record.seq`` leaves that record alone. Derived records
  (history, summary) are a function of their own previous value and the authoritative records, so
  recomputing them after a partial write (crash between two puts) yields what an uninterrupted run
  wrote. The same holds for rebuild from the stream (R-PROJ-06).
* **Determinism**: records hold only event data and stream sequences — never the wall clock — and
  are serialised with sorted keys, so a rebuild is byte-identical.
* **Cards** come from :func:`catalyst_sim.control.cards.derive_card` only (R-CARD-01..03, D-09), so
  every surface shows the same state (R-PROJ-05).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from catalyst_sim.control.cards import PRECEDENCE, CardInputs, CardState, derive_card
from catalyst_sim.control.events.publisher import GIT_PULL_TYPE, GIT_PUSH_TYPE, K8S_EVENT_TYPES, K8S_TYPE_PREFIX
from catalyst_sim.model.base import CatalystError
from catalyst_sim.model.naming import (
    ENV_TYPE_BRANCHES,
    kv_key,
    parse_env_subject,
    parse_environment_name,
)

__all__ = [
    "FLUX_KUSTOMIZE_TYPES",
    "FLUX_SOURCE_TYPES",
    "WORKLOAD_KINDS",
    "Event",
    "Folder",
    "ParkedEvent",
    "decode",
]

FLUX_KUSTOMIZE_TYPES = frozenset(f"io.fluxcd.kustomize.{o}" for o in
                                 ("reconciled", "progressing", "pending", "failed", "stalled", "deleted"))
FLUX_SOURCE_TYPES = frozenset({"io.fluxcd.source.artifact", "io.fluxcd.source.failed"})
K8S_TYPES = frozenset(K8S_TYPE_PREFIX + t.lower() for t in K8S_EVENT_TYPES)
#: k8s kinds whose replica counts feed the card's ready/desired pods (R-CARD-02 Running/Degraded).
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})
FLUX_NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
READY_VALUES = {"True": True, "False": False, "Unknown": None}
PARKED_PAYLOAD_LIMIT = 1024


class ParkedEvent(Exception):
    """The message cannot be projected; ``reason`` goes into its ``Parked/<seq>`` record."""

    def __init__(self, reason: str, *, event_id: str | None = None, time: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.time = time


@dataclass(frozen=True)
class Event:
    """A decoded, validated envelope at stream sequence ``seq``."""

    seq: int
    subject: str
    family: str  # flux | k8s | git
    tokens: tuple[str | None, ...]
    id: str
    type: str
    time: str | None
    envelope_subject: str
    data: Mapping[str, Any]
    vcluster: str = ""  # the CloudEvents extension naming the vcluster a flux or k8s event came from


def decode(seq: int, subject: str, raw: bytes, environment: str) -> Event:
    """Parse and validate one message for the projector of ``environment``; raise :class:`ParkedEvent`."""
    try:
        parsed = parse_env_subject(subject)
    except CatalystError as exc:
        raise ParkedEvent(f"not an Environment subject: {exc}") from None
    if parsed.environment != environment:
        raise ParkedEvent(f"event for unknown Environment {parsed.environment!r} (this projector folds "
                          f"{environment!r})")
    try:
        envelope = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParkedEvent(f"not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise ParkedEvent(f"envelope is a JSON {type(envelope).__name__}, not an object")
    event_id = envelope.get("id") if isinstance(envelope.get("id"), str) else None
    time = envelope.get("time") if isinstance(envelope.get("time"), str) else None

    def park(reason: str) -> ParkedEvent:
        return ParkedEvent(reason, event_id=event_id, time=time)

    if envelope.get("specversion") != "1.0":
        raise park(f"missing or unsupported CloudEvents specversion {envelope.get('specversion')!r}")
    for attr in ("id", "type", "subject"):
        if not isinstance(envelope.get(attr), str) or not envelope[attr]:
            raise park(f"missing CloudEvents attribute {attr!r}")
    if "time" in envelope and time is None:
        raise park("CloudEvents attribute 'time' is not a string")
    if envelope.get("environment", environment) != environment:
        raise park(f"event for unknown Environment {envelope.get('environment')!r} on a subject of {environment!r}")
    org = parse_environment_name(environment).organization
    if envelope.get("organization", org) != org:
        raise park(f"event of Organization {envelope.get('organization')!r} in Environment {environment!r}")
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise park("CloudEvents 'data' is missing or not an object")
    type_ = envelope["type"]
    known = {"flux": FLUX_KUSTOMIZE_TYPES | FLUX_SOURCE_TYPES, "k8s": K8S_TYPES, "git": {GIT_PUSH_TYPE, GIT_PULL_TYPE}}
    if type_ not in known.get(parsed.family, ()):
        raise park(f"unknown event type {type_!r} on a {parsed.family} subject")
    vcluster = envelope.get("vcluster", "")
    if not isinstance(vcluster, str):
        raise park("CloudEvents extension 'vcluster' is not a string")
    event = Event(seq, subject, parsed.family, parsed.tokens, event_id or "", type_, time,
                  envelope["subject"], data, vcluster)
    _validate(event, park)
    return event


def _validate(event: Event, park: Callable[[str], ParkedEvent]) -> None:
    data = event.data
    if event.family == "flux":
        if event.envelope_subject != event.tokens[0]:
            raise park(f"envelope subject {event.envelope_subject!r} is not the subject's kustomization "
                       f"{event.tokens[0]!r}")
        for field in ("revision", "reason", "message"):
            if not isinstance(data.get(field, ""), str):
                raise park(f"data.{field} is not a string")
        if data.get("ready", "Unknown") not in READY_VALUES:
            raise park(f"data.ready must be True, False or Unknown, not {data.get('ready')!r}")
        _key_or_park("Application", event.envelope_subject, park)
    elif event.family == "k8s":
        if not isinstance(data.get("object"), dict):
            raise park("data.object is missing or not an object")
        if event.type != K8S_TYPE_PREFIX + str(data.get("eventType", "")).lower():
            raise park(f"data.eventType {data.get('eventType')!r} does not match type {event.type!r}")
    elif event.family == "git":
        repo = data.get("repository")
        what = "pull request" if event.type == GIT_PULL_TYPE else "git push"
        if not isinstance(repo, dict) or not isinstance(repo.get("name"), str):
            raise park(f"{what} without repository.name")
        if not isinstance(data.get("ref", ""), str):
            raise park(f"{what} ref is not a string")
        if event.type == GIT_PULL_TYPE:
            number = data.get("number")
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise park(f"pull request data.number must be a positive integer, not {number!r}")
            if not isinstance(data.get("open"), bool):
                raise park(f"pull request data.open must be true or false, not {data.get('open')!r}")
            if not isinstance(data.get("base"), str) or not data["base"]:
                raise park("pull request without data.base (the branch it targets)")
        _key_or_park("Repository", repo["name"], park)


def _key_or_park(kind: str, name: str, park: Callable[[str], ParkedEvent]) -> str:
    try:
        return kv_key(kind, name)
    except CatalystError as exc:
        raise park(str(exc)) from None


def _applied_sha(revision: str) -> str:
    """``main@sha1:abc…`` → ``abc…`` (Flux revision format); bare shas pass through."""
    if "sha1:" in revision:
        return revision.rpartition("sha1:")[2]
    return revision.rpartition("@")[2]


Records = dict[str, dict[str, Any]]


class _View:
    """The records as they stand with this event's planned writes applied on top (nothing mutated)."""

    def __init__(self, state: Mapping[str, dict[str, Any]]) -> None:
        self.state = state
        self.overlay: Records = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.overlay.get(key, self.state.get(key))

    def write(self, key: str, record: dict[str, Any]) -> None:
        self.overlay[key] = record

    def __iter__(self) -> Iterator[str]:
        return iter({*self.state, *self.overlay})


class Folder:
    """Computes the KV writes of one event against the current records (``state``).

    ``plan`` returns ``[(key, record), ...]`` in write order; it never mutates ``state``.
    """

    def __init__(self, environment: str, *, history_limit: int = 50) -> None:
        self.environment = environment
        self.organization = parse_environment_name(environment).organization
        self.branch = ENV_TYPE_BRANCHES[parse_environment_name(environment).env_type]
        self.history_limit = history_limit

    # -- entry points ----------------------------------------------------------------------------

    def plan(self, event: Event, state: Mapping[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        view = _View(state)
        get, write = view.get, view.write
        app: str | None = None
        if event.family == "flux" and event.type in FLUX_KUSTOMIZE_TYPES:
            app = event.envelope_subject
            key = kv_key("Application", app)
            current = get(key)
            if _fresh(current, event.seq):
                write(key, self._fold_flux(current, event, get(kv_key("Repository", app)),
                                           get(kv_key("PullRequest", app))))
        elif event.family == "flux":
            key = kv_key("GitRepository", event.envelope_subject)
            if _fresh(get(key), event.seq):
                write(key, self._source_record(event))
        elif event.family == "k8s":
            app = self._workload_app(event)
            if app is not None:
                key = kv_key("Application", app)
                current = get(key)
                if _fresh(current, event.seq):
                    write(key, self._fold_workload(current, event, get(kv_key("Repository", app)),
                                                   get(kv_key("PullRequest", app))))
        elif event.family == "git" and event.type == GIT_PULL_TYPE:
            app = str(event.data["repository"]["name"])
            if str(event.data["base"]).removeprefix("refs/heads/") == self.branch:
                pulls_key = kv_key("PullRequest", app)
                if _fresh(get(pulls_key), event.seq):
                    write(pulls_key, self._pull_record(event, app, get(pulls_key)))
                key = kv_key("Application", app)
                current = get(key)
                if _fresh(current, event.seq):
                    rec = dict(current) if current else self._blank(app)
                    write(key, self._recard(rec, event, get(kv_key("Repository", app)), get(pulls_key)))
            else:
                app = None  # a pull request into another Environment's branch
        elif event.family == "git":
            app = str(event.data["repository"]["name"])
            if str(event.data.get("ref", "")).removeprefix("refs/heads/") == self.branch:
                repo_key = kv_key("Repository", app)
                if _fresh(get(repo_key), event.seq):
                    write(repo_key, self._repository_record(event, app))
                key = kv_key("Application", app)
                current = get(key)
                if current is not None and _fresh(current, event.seq):
                    write(key, self._recard(dict(current), event, get(repo_key), get(kv_key("PullRequest", app))))
            else:
                app = None  # a push to another Environment's branch changes nothing here
        if app is not None and get(kv_key("Application", app)) is not None:
            self._history(app, event, view)
        self._summary(event, view)
        return list(view.overlay.items())

    def plan_parked(self, seq: int, subject: str, raw: bytes, parked: ParkedEvent,
                    state: Mapping[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        view = _View(state)
        key = kv_key("Parked", str(seq))
        if key not in state:
            view.write(key, {
                "kind": "Parked", "seq": seq, "subject": subject, "reason": parked.reason,
                "id": parked.event_id, "time": parked.time,
                "payload": raw[:PARKED_PAYLOAD_LIMIT].decode("utf-8", errors="replace"),
                "truncated": len(raw) > PARKED_PAYLOAD_LIMIT,
            })
        self._summary(Event(seq, subject, "", (), parked.event_id or "", "", parked.time, "", {}), view)
        return list(view.overlay.items())

    # -- Application records ---------------------------------------------------------------------

    def _blank(self, app: str) -> dict[str, Any]:
        return {
            "kind": "Application", "name": app, "environment": self.environment, "organization": self.organization,
            "revision": "", "ready": "Unknown", "reason": "", "message": "", "ever_ready": False,
            "lastReadyRevision": None, "head": None, "paused": False, "deleted": False,
            "workloads": {}, "pods": None,
        }

    def _fold_flux(self, current: dict[str, Any] | None, event: Event, repo: dict[str, Any] | None,
                   pulls: dict[str, Any] | None) -> dict[str, Any]:
        data = event.data
        rec = dict(current) if current else self._blank(event.envelope_subject)
        if event.type == "io.fluxcd.kustomize.deleted":
            rec = self._blank(event.envelope_subject) | {"deleted": True, "workloads": rec.get("workloads", {})}
        ready = str(data.get("ready", "Unknown"))
        outcome = {"revision": str(data.get("revision", "")), "ready": ready, "reason": str(data.get("reason", "")),
                   "message": str(data.get("message", "")), "paused": data.get("suspended") is True}
        if event.vcluster:
            # An Environment spanning several vclusters (one per region) shows its worst vcluster (D-09).
            vclusters = dict(rec.get("vclusters") or {})
            vclusters[event.vcluster] = outcome
            rec["vclusters"] = vclusters
            outcome = min(sorted(vclusters.items()), key=lambda item: _severity(item[1]))[1]
        rec.update(outcome)
        if ready == "True" and not rec["deleted"]:
            rec["ever_ready"] = True
            rec["lastReadyRevision"] = str(data.get("revision", ""))
        return self._recard(rec, event, repo, pulls)

    def _fold_workload(self, current: dict[str, Any] | None, event: Event,
                       repo: dict[str, Any] | None, pulls: dict[str, Any] | None) -> dict[str, Any]:
        data = event.data
        rec = dict(current) if current else self._blank(self._workload_app(event) or "")
        workloads = dict(rec.get("workloads") or {})
        ref = f"{data.get('kind')}/{data.get('namespace') or '_'}/{data.get('name')}"
        if event.vcluster:
            ref = f"{event.vcluster}/{ref}"
        if data.get("eventType") == "DELETED":
            workloads.pop(ref, None)
        else:
            obj = data["object"]
            spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
            status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
            desired = spec.get("replicas", 1)
            ready = status.get("readyReplicas", 0)
            workloads[ref] = {"desired": desired if isinstance(desired, int) else 1,
                              "ready": ready if isinstance(ready, int) else 0}
        rec["workloads"] = workloads
        return self._recard(rec, event, repo, pulls)

    def _recard(self, rec: dict[str, Any], event: Event, repo: dict[str, Any] | None,
                pulls: dict[str, Any] | None) -> dict[str, Any]:
        """Recompute pods, head and the card (D-09 via derive_card) and stamp the event."""
        workloads = rec.get("workloads") or {}
        rec["pods"] = ({"ready": sum(w["ready"] for w in workloads.values()),
                        "desired": sum(w["desired"] for w in workloads.values())} if workloads else None)
        rec["head"] = repo["head"] if repo else None
        applied = _applied_sha(rec["revision"])
        at_head = rec["head"] is None or (bool(applied) and (applied.startswith(rec["head"])
                                                             or rec["head"].startswith(applied)))
        if rec["deleted"]:
            rec["card"] = None
        else:
            pods = rec["pods"] or {"ready": 0, "desired": 0}
            card = derive_card(CardInputs(
                ready=READY_VALUES.get(rec["ready"]), reason=rec["reason"], message=rec["message"],
                ever_ready=rec["ever_ready"], applied_is_head=at_head, ready_pods=pods["ready"],
                desired_pods=pods["desired"], paused=rec["paused"], pending_approval=bool(pulls and pulls["open"])))
            text = card.text
            if card.state is CardState.RUNNING and rec["pods"] and rec["revision"]:
                text = f"{text} at {rec['revision']}"  # which commit runs: what a promotion is checked by
            rec["card"] = {"state": card.state.value, "glyph": card.state.glyph, "text": text,
                           "label": card.label}
        rec["lastEvent"] = {"seq": event.seq, "id": event.id, "type": event.type, "time": event.time}
        rec["seq"] = event.seq
        return rec

    def _workload_app(self, event: Event) -> str | None:
        data = event.data
        if data.get("kind") not in WORKLOAD_KINDS:
            return None
        meta = data["object"].get("metadata")
        labels = meta.get("labels") if isinstance(meta, dict) and isinstance(meta.get("labels"), dict) else {}
        for candidate in (labels.get(FLUX_NAME_LABEL), labels.get(INSTANCE_LABEL), data.get("namespace")):
            if isinstance(candidate, str) and candidate:
                try:
                    kv_key("Application", candidate)
                except CatalystError:
                    continue
                return candidate
        return None

    # -- other records ---------------------------------------------------------------------------

    def _source_record(self, event: Event) -> dict[str, Any]:
        data = event.data
        return {"kind": "GitRepository", "name": event.envelope_subject, "revision": str(data.get("revision", "")),
                "ready": str(data.get("ready", "Unknown")), "reason": str(data.get("reason", "")),
                "message": str(data.get("message", "")), "type": event.type, "time": event.time, "seq": event.seq}

    def _pull_record(self, event: Event, app: str, current: dict[str, Any] | None) -> dict[str, Any]:
        """The open pull requests into this Environment's branch (a set, so replays change nothing)."""
        data = event.data
        numbers = set(current["open"]) if current else set()
        if data["open"]:
            numbers.add(int(data["number"]))
        else:
            numbers.discard(int(data["number"]))
        return {"kind": "PullRequest", "name": app, "branch": self.branch, "open": sorted(numbers),
                "time": event.time, "seq": event.seq}

    def _repository_record(self, event: Event, app: str) -> dict[str, Any]:
        data = event.data
        head = data.get("after") if isinstance(data.get("after"), str) else event.envelope_subject
        return {"kind": "Repository", "name": app, "branch": self.branch, "head": head, "time": event.time,
                "seq": event.seq}

    def _history(self, app: str, event: Event, view: _View) -> None:
        """Append a card transition (state, text or revision changed), keeping the last ``history_limit``."""
        key = kv_key("ApplicationHistory", app)
        get, write = view.get, view.write
        current = get(key)
        if not _fresh(current, event.seq):
            return
        rec = get(kv_key("Application", app))
        assert rec is not None
        card = rec["card"] or {"state": "Deleted", "text": ""}
        entry = {"seq": rec["seq"], "time": rec["lastEvent"]["time"], "event": rec["lastEvent"]["type"],
                 "state": card["state"], "text": card["text"], "revision": rec["revision"], "reason": rec["reason"]}
        entries = list(current["entries"]) if current else []
        if entries and all(entries[-1][f] == entry[f] for f in ("state", "text", "revision")):
            return
        entries = [*entries, entry][-self.history_limit:]
        write(key, {"kind": "ApplicationHistory", "name": app, "entries": entries, "seq": event.seq})

    def _summary(self, event: Event, view: _View) -> None:
        """Environment summary: card state per Application, counts, parked count. Written on change only."""
        key = kv_key("Environment", self.environment)
        apps: dict[str, str] = {}
        parked = 0
        get, write = view.get, view.write
        for k in view:
            rec = get(k)
            if rec is None:
                continue
            if rec.get("kind") == "Application" and rec.get("card"):
                apps[rec["name"]] = rec["card"]["state"]
            elif rec.get("kind") == "Parked":
                parked += 1
        counts = {s.value: 0 for s in PRECEDENCE}
        for s in apps.values():
            counts[s] += 1
        content = {"kind": "Environment", "name": self.environment, "organization": self.organization,
                   "applications": apps, "counts": counts, "parked": parked}
        current = get(key)
        if current is not None and {k: v for k, v in current.items() if k not in ("seq", "time")} == content:
            return
        if current is not None and current["seq"] >= event.seq:
            return
        write(key, content | {"seq": event.seq, "time": event.time})


def _severity(outcome: Mapping[str, Any]) -> int:
    """Order vcluster outcomes worst first, the way D-09 orders card states."""
    if outcome.get("paused"):
        return 0
    if outcome.get("ready") == "False":
        return 1
    if outcome.get("ready") != "True":
        return 2
    return 3


def _fresh(record: Mapping[str, Any] | None, seq: int) -> bool:
    """True when ``seq`` has not been applied to this record yet (the redelivery guard)."""
    return record is None or int(record.get("seq", 0)) < seq

