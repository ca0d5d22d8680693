"""The forge log: what the embedded Gitea did, in order, for evidence bundles (DESIGN.md §5).

A failed scenario should be explainable from the outside: which API calls and git requests arrived,
which refs a push moved, which webhooks went out and what the receiver answered. Every entry carries
both the forge's clock (virtual time on the embedded backend) and the wall clock, because a webhook
delay is real time while a commit date is virtual time. The log is bounded so a long soak cannot eat
the memory; entries are also mirrored to :mod:`logging` at DEBUG.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from catalyst_sim.clock import Clock

logger = logging.getLogger("catalyst_sim.forge")


@dataclass
class LogEntry:
    seq: int
    time: str  # forge clock, ISO 8601
    wall: float  # time.time()
    kind: str  # api | git | push | webhook | repo | error | lifecycle
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


class ForgeLog:
    def __init__(self, clock: Clock, maxlen: int = 20_000) -> None:
        self._clock = clock
        self._entries: deque[LogEntry] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._seq = 0

    def record(self, kind: str, message: str, **fields: Any) -> None:
        with self._lock:
            self._seq += 1
            entry = LogEntry(
                seq=self._seq,
                time=self._clock.now().isoformat(),
                wall=time.time(),
                kind=kind,
                message=message,
                fields=fields,
            )
            self._entries.append(entry)
        level = logging.WARNING if kind == "error" else logging.DEBUG
        logger.log(level, "%s %s %s", kind, message, fields or "")

    def entries(self, kind: str | None = None) -> list[LogEntry]:
        with self._lock:
            return [e for e in self._entries if kind is None or e.kind == kind]

    def dump(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.entries()]

    def write(self, path: Path) -> Path:
        """Write the log as JSON lines (one entry a line) and return the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for entry in self.dump():
                handle.write(json.dumps(entry, default=str) + "\n")
        return path
