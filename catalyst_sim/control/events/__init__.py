"""The event spine's write end: CloudEvents-shaped envelopes published to JetStream (R-PROJ-01)."""

from catalyst_sim.control.events.publisher import (
    GIT_PULL_TYPE,
    GIT_PUSH_TYPE,
    K8S_TYPE_PREFIX,
    EventPublisher,
    PublishError,
    canonical_json,
    ensure_stream,
    stream_name,
)

__all__ = [
    "GIT_PULL_TYPE",
    "GIT_PUSH_TYPE",
    "K8S_TYPE_PREFIX",
    "EventPublisher",
    "PublishError",
    "canonical_json",
    "ensure_stream",
    "stream_name",
]
