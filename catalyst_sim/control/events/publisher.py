"""Publish CloudEvents-shaped envelopes to JetStream in the owning Organization's account.

Why this shape (ARCHITECTURE §5, R-PROJ-01, R-NAME-16):

* Every input of the read side — k8s watch events, Flux reconcile outcomes (R-FLUX-04) and Gitea
  webhooks — goes through JetStream under the Environment's subject prefix ``ws.<env>.>``; the
  projector folds that one ordered log into the KV read model (R-PROJ-02), so the log must be
  durable (file storage) and complete.
* One stream per Environment, ``WS_<ENV>`` (``-`` becomes ``_``, upper case; Environment names never
  contain ``_``, so the mapping is one-to-one), capturing ``ws.<env>.>``. It is created idempotently
  in whatever account the connection authenticates to: the Organization's own account (R-NAME-16),
  so another Organization can neither read nor write it.
* Each message carries ``Nats-Msg-Id`` = the envelope ``id``. JetStream drops a second message with
  the same id inside the stream's duplicate window, which makes a publish *retry* safe: after a
  timeout or a NATS restart we publish again with the same id and the stream holds it exactly once.
  Consequence for producers: ids must be unique per Environment for at least the duplicate window
  (default 120 s of real time). Ids of k8s and git events default to a digest of their content.
* Subject tokens are percent-encoded per D-04 (``.`` → ``%2E``) by :mod:`catalyst_sim.model.naming`.

Retries use real (event-loop) time, not the simulation clock: they wait for a real server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, PubAck, RetentionPolicy, StorageType
from nats.js.errors import NoStreamResponseError, NotFoundError, ServiceUnavailableError

from catalyst_sim.clock import Clock, WallClock
from catalyst_sim.control.gitops.conditions import rfc3339
from catalyst_sim.model.naming import (
    env_subject_filter,
    flux_subject,
    git_subject,
    k8s_subject,
    parse_env_subject,
    parse_environment_name,
)

__all__ = [
    "DEFAULT_DUPLICATE_WINDOW",
    "GIT_PULL_TYPE",
    "GIT_PUSH_TYPE",
    "K8S_EVENT_TYPES",
    "K8S_TYPE_PREFIX",
    "EventPublisher",
    "PublishError",
    "canonical_json",
    "ensure_stream",
    "stream_name",
]

log = logging.getLogger(__name__)

#: JetStream's de-duplication window for the Environment streams, in seconds.
DEFAULT_DUPLICATE_WINDOW = 120.0
#: CloudEvents ``type`` of a k8s watch event: ``io.k8s.object.{added,modified,deleted}``.
K8S_TYPE_PREFIX = "io.k8s.object."
K8S_EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED")
#: CloudEvents ``type`` of a Gitea push webhook.
GIT_PUSH_TYPE = "io.gitea.push"
#: CloudEvents ``type`` of a pull request's state (opened, closed, merged) into an Environment's branch.
GIT_PULL_TYPE = "io.gitea.pull_request"
MSG_ID_HEADER = "Nats-Msg-Id"

# Errors after which the same message (same Nats-Msg-Id) may simply be sent again.
_TRANSIENT: tuple[type[BaseException], ...] = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    NoStreamResponseError,
    ServiceUnavailableError,
)


class PublishError(RuntimeError):
    """An envelope was refused before it reached JetStream, or JetStream stayed unreachable."""


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no whitespace): equal values give equal bytes.

    The projector's byte-identical rebuild (R-PROJ-06) and content-derived event ids rely on it.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def stream_name(environment: str) -> str:
    """``WS_<ENV>``: the JetStream stream holding ``ws.<env>.>`` (one per Environment)."""
    parse_environment_name(environment, "environment")
    return "WS_" + environment.upper().replace("-", "_")


async def ensure_stream(
    js: JetStreamContext,
    environment: str,
    *,
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
) -> str:
    """Create the Environment's stream if missing (idempotent, safe to race); return its name.

    An existing stream is used as it is, provided it captures ``ws.<env>.>``: a second publisher or
    the projector starting first must not fail or reconfigure it.
    """
    name = stream_name(environment)
    subjects = [env_subject_filter(environment)]
    for _ in range(2):
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            pass
        else:
            if subjects[0] not in (info.config.subjects or []):
                raise PublishError(f"stream {name} exists but does not capture {subjects[0]}: {info.config.subjects}")
            return name
        try:
            await js.add_stream(
                name=name,
                subjects=subjects,
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                discard=DiscardPolicy.OLD,
                duplicate_window=duplicate_window,
                description=f"Catalyst events of Environment {environment} (R-PROJ-01)",
            )
            return name
        except nats.js.errors.BadRequestError:
            continue  # someone else created it in between: read it back
    raise PublishError(f"could not create or read stream {name}")


class EventPublisher:
    """Publishes one Organization's events; ``nc`` is a connection authenticated to that Org's account.

    ``publish_*`` return the :class:`~nats.js.api.PubAck` (``duplicate`` is true when JetStream
    recognised the ``Nats-Msg-Id`` and stored nothing).
    """

    def __init__(
        self,
        nc: NATS,
        organization: str,
        *,
        clock: Clock | None = None,
        source: str = "/catalyst-sim/publisher",
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
        timeout: float = 5.0,
        retry_for: float = 30.0,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=timeout)
        self.organization = organization
        self.clock: Clock = clock or WallClock()
        self.source = source
        self.duplicate_window = duplicate_window
        self.timeout = timeout
        self.retry_for = retry_for
        self._streams: dict[str, str] = {}

    # -- the three inputs of R-PROJ-01 -----------------------------------------------------------

    async def publish_flux(self, event: Mapping[str, Any]) -> PubAck:
        """A GitOps engine envelope (gitops/events.py) → ``ws.<env>.flux.<kustomization>`` (R-FLUX-04)."""
        for attr in ("id", "type", "subject", "environment"):
            if not isinstance(event.get(attr), str) or not event.get(attr):
                raise PublishError(f"flux event without a string {attr!r}: {dict(event)!r}"[:300])
        subject = flux_subject(str(event["environment"]), str(event["subject"]))
        return await self.publish(subject, event)

    async def publish_k8s(
        self,
        env: str,
        kind: str,
        namespace: str | None,
        name: str,
        obj: Mapping[str, Any],
        event_type: str,
        *,
        event_id: str | None = None,
        vcluster: str | None = None,
    ) -> PubAck:
        """A watch event (ADDED/MODIFIED/DELETED) → ``ws.<env>.k8s.<kind>.<ns>.<name>`` (D-04 encoding).

        The default id is derived from the object's ``resourceVersion`` (or, lacking one, a digest of
        the content), so the same watch event seen twice — an informer relist — is stored once.
        """
        verb = event_type.upper()
        if verb not in K8S_EVENT_TYPES:
            raise PublishError(f"k8s event type must be one of {', '.join(K8S_EVENT_TYPES)}, not {event_type!r}")
        subject = k8s_subject(env, kind, namespace, name)
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
        rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
        if event_id is None:
            basis = f"{rv}" if rv else _digest({"obj": obj})
            event_id = f"k8s:{env}:{kind}:{namespace or '_'}:{name}:{verb}:{basis}"
        data = {
            "apiVersion": obj.get("apiVersion", ""),
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "eventType": verb,
            "object": dict(obj),
        }
        envelope = self._envelope(env, event_id, K8S_TYPE_PREFIX + verb.lower(),
                                  f"{namespace}/{name}" if namespace else name, data, vcluster=vcluster)
        return await self.publish(subject, envelope)

    async def publish_git(
        self, env: str, sha: str, payload: Mapping[str, Any], *, event_id: str | None = None
    ) -> PubAck:
        """A Gitea push webhook → ``ws.<env>.git.<sha>`` (R-PROJ-01, R-PROJ-07).

        ``payload`` is the webhook body (``repository.name``, ``ref``, ``after``...); the projector
        uses it to learn each Application's branch head (R-CARD-02 "at the branch head revision").
        """
        subject = git_subject(env, sha)
        if event_id is None:
            event_id = f"git:{env}:{sha}:{_digest(payload)}"
        envelope = self._envelope(env, event_id, GIT_PUSH_TYPE, sha, dict(payload))
        return await self.publish(subject, envelope)

    async def publish_pull_request(
        self, env: str, app: str, number: int, *, open: bool, base: str, head_sha: str, action: str = "",
        event_id: str | None = None,
    ) -> PubAck:
        """A pull request into ``base`` (an Environment branch) opened or closed → ``ws.<env>.git.<head-sha>``.

        The projector keeps the open ones per Application: an open promotion PR into this
        Environment's branch is its card's Pending approval (R-PROMO-08, R-CARD-02).
        """
        if not isinstance(number, int) or number < 1:
            raise PublishError(f"pull request of {app}: number must be a positive integer, not {number!r}")
        payload = {"repository": {"name": app}, "number": number, "open": open, "base": base, "action": action,
                   "head": head_sha}
        if event_id is None:
            event_id = f"pull:{env}:{app}:{number}:{'open' if open else 'closed'}:{head_sha}:{_digest(payload)}"
        envelope = self._envelope(env, event_id, GIT_PULL_TYPE, f"{app}#{number}", payload)
        return await self.publish(git_subject(env, head_sha), envelope)

    # -- generic ---------------------------------------------------------------------------------

    async def publish(self, subject: str, envelope: Mapping[str, Any]) -> PubAck:
        """Publish one envelope with ``Nats-Msg-Id`` = its id; retry transient failures with the same id.

        Refuses subjects of an Environment of another Organization: the connection's account would
        accept them into a stream that is not that Environment's (R-NAME-16).
        """
        parsed = parse_env_subject(subject)
        owner = parse_environment_name(parsed.environment, "environment").organization
        if owner != self.organization:
            raise PublishError(f"{subject}: Environment {parsed.environment} is not in Organization "
                               f"{self.organization} (R-NAME-16)")
        event_id = envelope.get("id")
        if not isinstance(event_id, str) or not event_id or "\n" in event_id or "\r" in event_id:
            raise PublishError(f"{subject}: envelope needs a single-line string id, got {event_id!r}")
        stream = await self.ensure_stream(parsed.environment)
        body = canonical_json(dict(envelope))
        return await self._publish_with_retry(subject, body, {MSG_ID_HEADER: event_id}, stream)

    async def ensure_stream(self, environment: str) -> str:
        """The Environment's stream name, created on first use (cached per publisher)."""
        if environment not in self._streams:
            self._streams[environment] = await self._retry(
                lambda: ensure_stream(self.js, environment, duplicate_window=self.duplicate_window),
                f"stream for {environment}",
            )
        return self._streams[environment]

    # -- internals -------------------------------------------------------------------------------

    def _envelope(self, env: str, event_id: str, type_: str, subject: str, data: dict[str, Any],
                  *, vcluster: str | None = None) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "specversion": "1.0",
            "id": event_id,
            "type": type_,
            "source": self.source,
            "subject": subject,
            "time": rfc3339(self.clock.now()),
            "datacontenttype": "application/json",
            "organization": self.organization,
            "environment": env,
            "data": data,
        }
        if vcluster:
            envelope["vcluster"] = vcluster
        return envelope

    async def _publish_with_retry(self, subject: str, body: bytes, headers: dict[str, str], stream: str) -> PubAck:
        return await self._retry(
            lambda: self.js.publish(subject, body, timeout=self.timeout, stream=stream, headers=headers),
            subject,
        )

    async def _retry(self, attempt: Any, what: str) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        wait = 0.05
        while True:
            try:
                return await attempt()
            except _TRANSIENT as exc:
                if self.nc.is_closed or loop.time() + wait > deadline:
                    raise PublishError(f"{what}: JetStream unreachable for {self.retry_for:.0f}s: {exc!r}") from exc
                log.debug("publish %s: %r; retrying in %.2fs", what, exc, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, 1.0)


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()[:32]
