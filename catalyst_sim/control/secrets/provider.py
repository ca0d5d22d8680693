"""ESO's Vault provider against one region's OpenBao, with hvac (R-SEC-01).

Every sync logs in afresh through OpenBao's ``jwt`` auth method with the workload's current JWT-SVID
(ESO's default: no token cache), then reads KV v2. Every refusal comes from OpenBao and is reported
with its words, classified so the ExternalSecret's status says what to do:

* :class:`Unreachable` — nothing answers (connection refused, timeout): retried with backoff;
* :class:`Sealed` — OpenBao answers 503 (sealed or standby without a leader): retried with backoff;
* :class:`LoginRefused` — the SVID was refused (expired, foreign signature, wrong subject);
* :class:`Forbidden` — the Org's policy does not cover the path (403);
* :class:`NotFound` — no secret (or no such property) at the path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import hvac
import hvac.exceptions
import requests

from catalyst_sim.backends.embedded.secrets_backend import JWT_MOUNT, org_role

TIMEOUT = 5.0


class ProviderError(Exception):
    reason = "ProviderError"


class Unreachable(ProviderError):
    reason = "Unreachable"


class Sealed(ProviderError):
    reason = "Sealed"


class LoginRefused(ProviderError):
    reason = "LoginRefused"


class Forbidden(ProviderError):
    reason = "Forbidden"


class NotFound(ProviderError):
    reason = "NotFound"


RETRYABLE = (Unreachable, Sealed)


def _bao_message(exc: Exception) -> str:
    """OpenBao's own error text without hvac's ', on get http://...' suffix."""
    text = " ".join(str(exc).split())
    return text.split(", on ")[0] or type(exc).__name__


def _client(url: str, token: str | None = None) -> hvac.Client:
    session = requests.Session()
    session.trust_env = False  # loopback: never through a proxy from the environment
    return hvac.Client(url=url, token=token, session=session, timeout=TIMEOUT)


def _call(url: str, what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except requests.exceptions.RequestException as exc:
        raise Unreachable(f"OpenBao at {url} is unreachable ({what}): {type(exc).__name__}") from None
    except hvac.exceptions.VaultDown as exc:
        raise Sealed(f"OpenBao at {url} is sealed ({what}): {_bao_message(exc)}") from None
    except hvac.exceptions.InternalServerError as exc:
        if "sealed" in str(exc).lower():
            raise Sealed(f"OpenBao at {url} is sealed ({what}): {_bao_message(exc)}") from None
        raise Unreachable(f"OpenBao at {url} failed ({what}): {_bao_message(exc)}") from None


class OpenBaoProvider:
    """Read secrets of one Organization from one OpenBao, logged in by SVID."""

    def __init__(self, url: str, organization: str) -> None:
        self.url = url
        self.organization = organization
        self.role = org_role(organization)

    def login(self, jwt_svid: str) -> str:
        client = _client(self.url)

        def login() -> str:
            try:
                answer = client.auth.jwt.jwt_login(role=self.role, jwt=jwt_svid, path=JWT_MOUNT)
            except (hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
                raise LoginRefused(f"OpenBao refused the SVID login for role {self.role}: {_bao_message(exc)}") \
                    from None
            return str(answer["auth"]["client_token"])

        try:
            return str(_call(self.url, "login", login))
        finally:
            client.adapter.close()

    def read(self, token: str, path: str, version: int | None = None) -> dict[str, Any]:
        """The data of the KV v2 secret at a spec path ``<mount>/<path>``."""
        mount, _, sub = path.partition("/")
        client = _client(self.url, token)

        def read() -> dict[str, Any]:
            try:
                found = client.secrets.kv.v2.read_secret_version(
                    path=sub, mount_point=mount, version=version, raise_on_deleted_version=True)
            except hvac.exceptions.Forbidden as exc:
                raise Forbidden(f"{path}: OpenBao denied reading it: {_bao_message(exc)}") from None
            except hvac.exceptions.InvalidPath:
                raise NotFound(f"{path}: secret not found in OpenBao") from None
            data = (found.get("data") or {}).get("data")
            if data is None:
                raise NotFound(f"{path}: secret version is deleted or destroyed in OpenBao")
            return dict(data)

        try:
            result: dict[str, Any] = _call(self.url, f"read {path}", read)
            return result
        finally:
            client.adapter.close()


def property_value(data: dict[str, Any], path: str, prop: str | None) -> str:
    """One value of a secret as the bytes ESO would store: strings as-is, anything else as JSON."""
    if prop is None:
        return json.dumps(data, sort_keys=True)
    if prop not in data:
        raise NotFound(f"{path}: the secret has no property {prop!r}")
    value = data[prop]
    return value if isinstance(value, str) else json.dumps(value)
