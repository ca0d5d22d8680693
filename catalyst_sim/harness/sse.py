"""A console tab, as the harness sees it: an SSE client of an Environment's read model in a thread.

It keeps every event it received in order (``events``) and the latest record per key (``state``),
and resumes with ``Last-Event-ID`` when its stream ends, the way a browser's EventSource does.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["SseClient", "SseEvent"]


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: Any


class SseClient:
    def __init__(self, base_url: str, path: str, *, headers: dict[str, str] | None = None,
                 last_event_id: str | None = None, name: str = "sse", auth: httpx.Auth | None = None) -> None:
        self.base_url = base_url
        self.path = path
        self.headers = dict(headers or {})
        self.last_event_id = last_event_id
        self.events: list[SseEvent] = []
        self.state: dict[str, Any] = {}
        self.connects = 0
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0, read=60.0), auth=auth)
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, name=f"catalyst-sim:{name}", daemon=True)

    def start(self) -> SseClient:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            response.close()
        self._client.close()
        self._thread.join(10)

    def __enter__(self) -> SseClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- views ------------------------------------------------------------------------------------

    def snapshot(self) -> tuple[list[SseEvent], dict[str, Any]]:
        with self._lock:
            return list(self.events), dict(self.state)

    def synced(self) -> bool:
        with self._lock:
            return any(e.event == "synced" for e in self.events)

    def revision(self) -> int:
        """The highest KV revision received (0 before any change)."""
        with self._lock:
            return max((int(e.id) for e in self.events if e.id), default=0)

    def card_states(self, app: str) -> list[str]:
        """The card states of ``Application/<app>`` in the order this client saw them, repeats removed."""
        with self._lock:
            states = [e.data["value"]["card"]["state"] for e in self.events
                      if e.event == "Application" and e.data["key"] == f"Application/{app}"
                      and e.data.get("value") and e.data["value"].get("card")]
        return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]

    # -- the reader thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            headers = dict(self.headers)
            if self.last_event_id:
                headers["Last-Event-ID"] = self.last_event_id
            try:
                with self._client.stream("GET", self.path, headers=headers) as response:
                    self._response = response
                    if response.status_code != 200:
                        response.read()
                        raise RuntimeError(f"SSE {self.path}: HTTP {response.status_code}: {response.text[:300]}")
                    self.connects += 1
                    self._read(response)
            except (httpx.HTTPError, RuntimeError) as exc:
                if self._stop.is_set():
                    return
                self.error = exc
                time.sleep(0.1)

    def _read(self, response: httpx.Response) -> None:
        fields: dict[str, str] = {}
        data: list[str] = []
        for line in response.iter_lines():
            if self._stop.is_set():
                return
            if line == "":
                if data or fields.get("event"):
                    self._dispatch(fields, "\n".join(data))
                fields, data = {}, []
                continue
            if line.startswith(":"):
                continue  # a comment (sse-starlette's ping)
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value

    def _dispatch(self, fields: dict[str, str], raw: str) -> None:
        try:
            data: Any = json.loads(raw) if raw else None
        except ValueError:
            data = raw
        event = SseEvent(fields.get("id"), fields.get("event", "message"), data)
        with self._lock:
            self.events.append(event)
            if event.id:
                self.last_event_id = event.id
            if isinstance(data, dict) and "key" in data:
                self.state[data["key"]] = data.get("value")
