"""Reconcile outcomes as CloudEvents-shaped envelopes (R-FLUX-04).

A publisher (not this package) sends them to ``ws.<env>.flux.<kustomization>``; the envelope
therefore carries the Environment, Organization and vcluster as CloudEvents extension attributes,
and the Kustomization (or GitRepository) name as ``subject``. Event ids are a per-engine sequence,
so the same scenario replayed with the same seed produces the same ids (DESIGN.md §6).

Types: ``io.fluxcd.kustomize.{reconciled,progressing,pending,failed,stalled,deleted}`` — one for every
outcome of a Kustomization reconcile, repeated outcomes included (a periodic drift-correcting pass
that finds everything Ready reports ``reconciled`` again) — and ``io.fluxcd.source.{artifact,failed}``,
which, like source-controller's events, only fire on a new artifact or a changed failure. A listener
that raises never breaks a reconcile: the error is logged and the event dropped.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from catalyst_sim.clock import Clock
from catalyst_sim.control.gitops.conditions import rfc3339
from catalyst_sim.control.gitops.crds import FLUX_NAMESPACE, KUSTOMIZE_API, SOURCE_API

log = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], None]


class EventEmitter:
    def __init__(
        self, sink: EventSink | None, clock: Clock, *, vcluster: str, organization: str, environment: str
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._vcluster = vcluster
        self._organization = organization
        self._environment = environment
        self._seq = itertools.count(1)

    def kustomization(self, name: str, outcome: str, *, revision: str, ready: str, reason: str,
                      message: str, **extra: Any) -> None:
        self._emit("kustomize", "kustomize-controller", KUSTOMIZE_API, "Kustomization", name, outcome,
                   revision=revision, ready=ready, reason=reason, message=message, **extra)

    def source(self, name: str, outcome: str, *, revision: str, ready: str, reason: str, message: str,
               **extra: Any) -> None:
        self._emit("source", "source-controller", SOURCE_API, "GitRepository", name, outcome,
                   revision=revision, ready=ready, reason=reason, message=message, **extra)

    def _emit(self, family: str, controller: str, api_version: str, kind: str, name: str, outcome: str,
              **data: Any) -> None:
        if self._sink is None:
            return
        event = {
            "specversion": "1.0",
            "id": f"{self._vcluster}-{next(self._seq)}",
            "type": f"io.fluxcd.{family}.{outcome}",
            "source": f"/vclusters/{self._vcluster}/namespaces/{FLUX_NAMESPACE}/{controller}",
            "subject": name,
            "time": rfc3339(self._clock.now()),
            "datacontenttype": "application/json",
            "organization": self._organization,
            "environment": self._environment,
            "vcluster": self._vcluster,
            "data": {"apiVersion": api_version, "kind": kind, "namespace": FLUX_NAMESPACE, "name": name, **data},
        }
        try:
            self._sink(event)
        except Exception:  # a listener's bug must not stop Flux from reconciling
            log.exception("on_event listener failed for %s %s", event["type"], name)
