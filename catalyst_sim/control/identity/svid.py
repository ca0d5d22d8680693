"""Workload identity: a SPIRE-equivalent issuing JWT-SVIDs on the virtual clock (R-ID-01, R-NAME-19).

* :class:`SvidIssuer` is the Sovereign's SPIRE server: trust domain = the Sovereign name, one ES256
  signing key, a JWKS (:meth:`SvidIssuer.jwks`) that :func:`jwks_app` serves over HTTP. OpenBao's own
  ``jwt`` auth method is configured with that URL (``jwks_url``), so OpenBao, not this module,
  verifies signatures, audiences, subjects and lifetimes.
* :class:`SvidAgent` is the SPIRE agent of one workload: it holds the current SVID of
  ``spiffe://<sovereign>/ns/<namespace>/sa/<serviceaccount>`` (R-NAME-19), which lives **5 min**
  (R-ID-01, not configurable) and is re-issued at half of its life (SPIRE's rotation point) by a
  timer on the :class:`~catalyst_sim.clock.Clock`.

Where virtual time meets OpenBao's wall clock
---------------------------------------------
An SVID's lifetime is virtual: issued at virtual ``iat``, it dies at virtual ``exp = iat + 5 min``. OpenBao
judges ``exp``/``nbf``/``iat`` by its own wall clock, which a scenario cannot move ("When 6 minutes pass"
takes milliseconds of real time). A JWT signed once with wall-clock claims would therefore still be
accepted after six virtual minutes, and a JWT with virtual claims (the virtual epoch is not "now") would
never be accepted at all.

The bridge: the SVID is the virtual object; its wire form, the JWT, is produced when it is presented
(:meth:`Svid.token`, the equivalent of the Workload API's ``FetchJWTSVID``), by translating every virtual
instant by the current offset between the two clocks::

    claim_wall = floor(wall_now + (instant_virtual - virtual_now))

So the *remaining* life OpenBao sees equals the remaining virtual life at the moment of presentation.
A fresh SVID reaches OpenBao with ``exp`` about five real minutes ahead; an SVID whose virtual ``exp``
has passed reaches it with ``exp`` in the (real) past, and OpenBao itself answers "token is expired".
The per-Org roles disable OpenBao's clock-skew leeways (``-1``) so that the boundary is exact to the
second. What this does not model: a JWT copied and replayed later keeps its translated claims (its
expiry then runs on real time); and within one second of virtual expiry OpenBao may already refuse it
(claims are whole seconds, rounded towards expiry). Real SPIRE agents refresh at half-life, so neither
affects a healthy workload.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from catalyst_sim.clock import Clock, TimerHandle
from catalyst_sim.model import naming

SVID_LIFETIME = timedelta(minutes=5)  # R-ID-01: fixed, not configurable
ALGORITHM = "ES256"
JWKS_PATH = "/keys"
DEFAULT_AUDIENCE = "openbao"


class SvidError(ValueError):
    """An SVID that cannot be issued: the message names the field at fault."""


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """``spiffe://<sovereign>/ns/<namespace>/sa/<serviceaccount>`` (R-NAME-19), each part checked."""
    for value, what in ((trust_domain, "trust domain (Sovereign name)"), (namespace, "namespace"),
                        (service_account, "service account")):
        if problems := naming.problems_for_dns_label(value, what=what):
            raise SvidError("; ".join(p.message for p in problems))
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def wall_instant(instant: datetime, virtual_now: datetime, wall_now: float) -> int:
    """The wall-clock second (Unix time) that corresponds to a virtual ``instant`` right now."""
    return math.floor(wall_now + (instant - virtual_now).total_seconds())


@dataclass(frozen=True)
class Svid:
    """One JWT-SVID as SPIRE knows it: who, for whom, and when (all instants virtual)."""

    spiffe_id: str
    audience: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    serial: int
    issuer: SvidIssuer = field(repr=False, compare=False)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def claims(self, virtual_now: datetime, wall_now: float | None = None) -> dict[str, Any]:
        """The JWT claims with every instant translated onto the wall clock (see the module doc)."""
        wall = time.time() if wall_now is None else wall_now
        issued = wall_instant(self.issued_at, virtual_now, wall)
        return {
            "sub": self.spiffe_id,
            "aud": list(self.audience),
            "iat": issued,
            "nbf": issued,
            "exp": wall_instant(self.expires_at, virtual_now, wall),
            "jti": f"{self.issuer.trust_domain}-{self.serial}",
        }

    def token(self, virtual_now: datetime, wall_now: float | None = None) -> str:
        """The compact JWT to present now (the Workload API's FetchJWTSVID)."""
        return self.issuer.sign(self.claims(virtual_now, wall_now))


class SvidIssuer:
    """The SPIRE server of one trust domain: signs JWT-SVIDs and publishes its key set."""

    def __init__(self, trust_domain: str, clock: Clock, *, lifetime: timedelta = SVID_LIFETIME) -> None:
        if problems := naming.problems_for_dns_label(trust_domain, what="trust domain (Sovereign name)"):
            raise SvidError("; ".join(p.message for p in problems))
        self.trust_domain = trust_domain
        self.clock = clock
        self.lifetime = lifetime
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.kid = secrets.token_hex(8)
        self._serial = 0
        self._lock = threading.Lock()
        self.issued = 0

    def issue(self, namespace: str, service_account: str, audience: str = DEFAULT_AUDIENCE) -> Svid:
        subject = spiffe_id(self.trust_domain, namespace, service_account)
        if not audience:
            raise SvidError("audience: an SVID needs at least one audience")
        now = self.clock.now()
        with self._lock:
            self._serial += 1
            self.issued += 1
            serial = self._serial
        return Svid(subject, (audience,), now, now + self.lifetime, serial, self)

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"})

    def jwks(self) -> dict[str, Any]:
        """The JWKS OpenBao verifies against (public key only)."""
        key = json.loads(ECAlgorithm.to_jwk(self._key.public_key()))
        key.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": [key]}


def jwks_app(issuer: SvidIssuer) -> Starlette:
    """The key set over HTTP (``GET /keys``), what OpenBao's ``jwks_url`` points at."""

    async def keys(_: Request) -> JSONResponse:
        return JSONResponse(issuer.jwks())

    return Starlette(routes=[Route(JWKS_PATH, keys)])


class SvidAgent:
    """The current SVID of one workload, re-issued at half-life by a timer on the clock (R-ID-01)."""

    def __init__(self, issuer: SvidIssuer, namespace: str, service_account: str,
                 audience: str = DEFAULT_AUDIENCE) -> None:
        self.issuer = issuer
        self.namespace = namespace
        self.service_account = service_account
        self.audience = audience
        self._svid: Svid | None = None
        self._timer: TimerHandle | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self.rotations = 0

    @property
    def spiffe_id(self) -> str:
        return spiffe_id(self.issuer.trust_domain, self.namespace, self.service_account)

    def start(self) -> SvidAgent:
        self._rotate()
        return self

    def current(self) -> Svid:
        with self._lock:
            svid = self._svid
        if svid is None:
            raise SvidError(f"SVID agent for {self.spiffe_id} is not started")
        return svid

    def _rotate(self) -> None:
        with self._lock:
            if self._stopped:
                return
            svid = self.issuer.issue(self.namespace, self.service_account, self.audience)
            self._svid = svid
            self.rotations += 1
            if self._timer is not None:
                self._timer.cancel()
            half_life = (svid.expires_at - svid.issued_at) / 2
            self._timer = None
        timer = self.issuer.clock.call_at(svid.issued_at + half_life, self._rotate)
        with self._lock:
            if self._stopped:
                timer.cancel()
            elif self._svid is svid:
                self._timer = timer

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
