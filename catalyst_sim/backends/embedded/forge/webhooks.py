"""Webhook delivery: Gitea's headers and signatures, sent from one worker thread off a bounded queue.

A push or an API commit must never wait for (or fail because of) a slow receiver, so the request
path only *enqueues*; a single daemon worker posts the deliveries in order, like Gitea's webhook
queue. Each delivery is recorded (request headers and body, status, response, error, timings) so a
test or an evidence bundle can show exactly what went out. A full queue drops the delivery, logged
and recorded as dropped, instead of blocking the pusher. Failures are logged, never raised: Gitea
too only marks a delivery failed and moves on (there are no automatic retries in Gitea).

Headers are Gitea's (services/webhook/deliver.go): ``X-Gitea-Event``, ``X-Gitea-Event-Type``,
``X-Gitea-Delivery``, ``X-Gitea-Signature`` (hex HMAC-SHA256 of the body with the hook secret), the
``X-Gogs-*`` and ``X-GitHub-*`` twins, ``X-Hub-Signature`` (sha1=) and ``X-Hub-Signature-256``
(sha256=), ``User-Agent: GiteaServer``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from catalyst_sim.backends.embedded.forge.eventlog import ForgeLog
from catalyst_sim.backends.embedded.forge.models import Webhook
from catalyst_sim.clock import Clock

_STOP = object()


@dataclass
class Delivery:
    uuid: str
    hook_id: int
    event: str
    event_type: str
    url: str
    repo: str
    payload: dict[str, Any]
    request_headers: dict[str, str]
    request_body: bytes
    queued_at: str
    status_code: int | None = None
    response_body: str = ""
    error: str | None = None
    delivered_at: str | None = None
    duration_ms: float | None = None
    dropped: bool = False
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def summary(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "hook_id": self.hook_id,
            "event": self.event,
            "url": self.url,
            "repo": self.repo,
            "queued_at": self.queued_at,
            "delivered_at": self.delivered_at,
            "status_code": self.status_code,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "dropped": self.dropped,
            "ref": self.payload.get("ref"),
            "after": self.payload.get("after"),
            "event_type": self.event_type,
            "action": self.payload.get("action"),
            "number": self.payload.get("number"),
        }


def sign(secret: str, body: bytes) -> tuple[str, str]:
    """(sha256 hex, sha1 hex) HMACs of ``body``; empty strings without a secret, as Gitea sends."""
    if not secret:
        return "", ""
    key = secret.encode()
    return (hmac.new(key, body, hashlib.sha256).hexdigest(), hmac.new(key, body, hashlib.sha1).hexdigest())


class WebhookDispatcher:
    def __init__(
        self,
        clock: Clock,
        log: ForgeLog,
        *,
        name: str = "forge",
        maxsize: int = 512,
        timeout: float = 5.0,
        keep: int = 10_000,
    ) -> None:
        self._clock = clock
        self._log = log
        self._name = name
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._timeout = timeout
        self._deliveries: deque[Delivery] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._client = httpx.Client(timeout=self._timeout, follow_redirects=False, trust_env=False)
        self._thread = threading.Thread(
            target=self._run, name=f"catalyst-sim:{self._name}-webhooks", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (bounded by ``timeout``), then end the worker and its client."""
        thread = self._thread
        if thread is not None:
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                self._log.record("error", "webhook queue still full at stop; abandoning it")
            thread.join(timeout)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- submitting -------------------------------------------------------------------------------
    def submit(
        self, hook: Webhook, event: str, payload: dict[str, Any], *, repo: str, event_type: str | None = None
    ) -> Delivery:
        """Queue one delivery and return its record at once; never blocks the caller."""
        payload_json = json.dumps(payload, indent=2, ensure_ascii=False)
        if hook.content_type == "form":
            body = urlencode({"payload": payload_json}).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            body = payload_json.encode()
            content_type = "application/json"
        delivery_id = str(uuid.uuid4())
        sha256, sha1 = sign(hook.secret, body)
        kind = event_type or event
        headers = {
            "Content-Type": content_type,
            "User-Agent": "GiteaServer",
            "X-Gitea-Delivery": delivery_id,
            "X-Gitea-Event": event,
            "X-Gitea-Event-Type": kind,
            "X-Gitea-Signature": sha256,
            "X-Gogs-Delivery": delivery_id,
            "X-Gogs-Event": event,
            "X-Gogs-Event-Type": kind,
            "X-Gogs-Signature": sha256,
            "X-Hub-Signature": f"sha1={sha1}",
            "X-Hub-Signature-256": f"sha256={sha256}",
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Event": event,
            "X-GitHub-Event-Type": kind,
        }
        if hook.authorization_header:
            headers["Authorization"] = hook.authorization_header
        delivery = Delivery(
            uuid=delivery_id,
            hook_id=hook.id,
            event=event,
            event_type=kind,
            url=hook.url,
            repo=repo,
            payload=payload,
            request_headers=headers,
            request_body=body,
            queued_at=self._clock.now().isoformat(),
        )
        with self._lock:
            self._deliveries.append(delivery)
            if self._thread is None:
                delivery.dropped = True
            else:
                try:
                    self._queue.put_nowait(delivery)
                    self._pending += 1
                except queue.Full:
                    delivery.dropped = True
        if delivery.dropped:
            delivery.error = "webhook queue full or dispatcher stopped: delivery dropped"
            delivery.done.set()
            self._log.record(
                "error", "webhook dropped", hook_id=hook.id, event=event, url=hook.url, repo=repo
            )
        return delivery

    # -- worker -----------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._deliver(item)
            except Exception as exc:  # a bug in delivery must not kill the worker
                item.error = f"internal error: {exc!r}"
                self._log.record("error", "webhook worker failure", error=repr(exc))
            finally:
                item.done.set()
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        assert self._client is not None
        started = time.perf_counter()
        try:
            response = self._client.post(
                delivery.url, content=delivery.request_body, headers=delivery.request_headers
            )
            delivery.status_code = response.status_code
            delivery.response_body = response.text[:2048]
        except httpx.HTTPError as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        delivery.duration_ms = round((time.perf_counter() - started) * 1000, 2)
        delivery.delivered_at = self._clock.now().isoformat()
        if delivery.success:
            self._log.record("webhook", f"delivered {delivery.event}", **delivery.summary())
        else:
            self._log.record("error", f"webhook delivery failed: {delivery.event}", **delivery.summary())

    # -- inspection -------------------------------------------------------------------------------
    def deliveries(
        self, *, event: str | None = None, hook_id: int | None = None, repo: str | None = None
    ) -> list[Delivery]:
        with self._lock:
            return [
                d
                for d in self._deliveries
                if (event is None or d.event == event)
                and (hook_id is None or d.hook_id == hook_id)
                and (repo is None or d.repo.lower() == repo.lower())
            ]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery has been attempted."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def wait_for(self, predicate: Callable[[Delivery], bool], timeout: float = 10.0) -> Delivery | None:
        """The first attempted delivery matching ``predicate``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for delivery in self.deliveries():
                if predicate(delivery) and delivery.done.is_set():
                    return delivery
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with self._idle:
                self._idle.wait(min(remaining, 0.05))
