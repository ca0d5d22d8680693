"""Status conditions and Go durations, spelled the way Flux and kstatus spell them.

Consumers (the projector's card derivation R-CARD-02, ``kubectl get ks``, ``flux get``) read the
``Ready``/``Reconciling``/``Stalled``/``Healthy`` conditions and their reasons, so the strings here
are the upstream ones. ``lastTransitionTime`` only moves when a condition's status flips, which is
also what lets an unchanged status be recognised and its write skipped.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
HEALTHY = "Healthy"
ARTIFACT_IN_STORAGE = "ArtifactInStorage"
FETCH_FAILED = "FetchFailed"

# Reasons (fluxcd/pkg/apis/meta and the controllers' own).
SUCCEEDED = "Succeeded"
RECONCILIATION_SUCCEEDED = "ReconciliationSucceeded"
RECONCILIATION_FAILED = "ReconciliationFailed"
PROGRESSING = "Progressing"
DEPENDENCY_NOT_READY = "DependencyNotReady"
ARTIFACT_FAILED = "ArtifactFailed"
BUILD_FAILED = "BuildFailed"
HEALTH_CHECK_FAILED = "HealthCheckFailed"
GIT_OPERATION_FAILED = "GitOperationFailed"
AUTHENTICATION_FAILED = "AuthenticationFailed"
DEPENDENCY_CYCLE = "DependencyCycle"  # ours: upstream Flux would wait forever on a cycle

_ORDER = (READY, HEALTHY, RECONCILING, STALLED, ARTIFACT_IN_STORAGE, FETCH_FAILED)
MAX_MESSAGE = 32_768  # metav1.Condition's message limit


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def get(conditions: list[dict[str, Any]] | None, kind: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == kind), None)


def status_of(obj: dict[str, Any] | None, kind: str = READY) -> str:
    """``True``/``False``/``Unknown`` of one condition of ``obj`` (``Unknown`` when absent)."""
    found = get(((obj or {}).get("status") or {}).get("conditions"), kind)
    return str(found.get("status", "Unknown")) if found else "Unknown"


def put(
    conditions: list[dict[str, Any]] | None,
    kind: str,
    status: str,
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """A new list with ``kind`` set; the transition time is kept unless the status changed."""
    old = get(conditions, kind)
    changed = old is None or old.get("status") != status
    entry = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "observedGeneration": generation,
        "lastTransitionTime": rfc3339(now) if changed or old is None else old.get("lastTransitionTime"),
    }
    rest = [c for c in conditions or [] if c.get("type") != kind]
    return _ordered([*rest, entry])


def drop(conditions: list[dict[str, Any]] | None, *kinds: str) -> list[dict[str, Any]]:
    return [c for c in conditions or [] if c.get("type") not in kinds]


def _ordered(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def rank(condition: dict[str, Any]) -> int:
        kind = condition.get("type")
        return _ORDER.index(kind) if kind in _ORDER else len(_ORDER)

    return sorted(conditions, key=rank)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class DurationError(ValueError):
    pass


def parse_duration(text: str | int | float | None, default: float) -> float:
    """Seconds in a Go duration such as ``1m``, ``30s`` or ``1h30m`` (metav1.Duration)."""
    if text is None or text == "":
        return default
    if isinstance(text, int | float):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise DurationError(f"invalid duration {text!r}: use Go duration syntax such as 1m, 30s or 1h30m")
    return sum(float(number) * _UNIT[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: ``1m0s``, ``30s``, ``1h0m0s``, ``2.5s``."""
    if seconds < 60:
        text = f"{seconds:.3f}".rstrip("0").rstrip(".")
        return f"{text}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"
