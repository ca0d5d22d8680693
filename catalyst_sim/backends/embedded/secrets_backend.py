"""One real OpenBao per region of the topology, set up for Catalyst's secrets flow (R-SEC-01, R-MR-05).

:class:`RegionalOpenBao` starts an :class:`~catalyst_sim.backends.embedded.openbao.EmbeddedOpenBao` for
every region of a Sovereign (in parallel: each start is mostly waiting), then prepares each the same way:

* a KV v2 engine at ``org/`` holding ``org/{org}/env/{env_type}/...`` (R-NAME-18);
* OpenBao's ``jwt`` auth method at ``jwt/``, bound to the SPIRE-equivalent's JWKS URL
  (:mod:`catalyst_sim.control.identity.svid`), so workload logins are verified by OpenBao itself;
* per Organization (:meth:`RegionalOpenBao.add_organization`): the read policy ``org-{org}-read``
  (only ``org/{org}/env/*``) and the role ``org-{org}`` that accepts only the SVID
  ``spiffe://<sovereign>/ns/{org}/sa/external-secrets`` with audience ``openbao``, with OpenBao's clock
  leeways disabled so virtual expiry is exact (see the svid module).

The regions are independent (no stretched cluster, R-MR-05): stopping one leaves the others serving.
Replication from a primary is not modelled; whoever writes a value writes it to every region
(:meth:`RegionalOpenBao.write`), which is what one-way replication with under 1 s lag looks like to a
reader.

Per-scenario reset deletes the Organizations' KV trees, roles and policies (a few requests) instead of
restarting servers.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions

from catalyst_sim.backends.embedded.openbao import ORG_MOUNT, EmbeddedOpenBao, Mode, org_policy_name
from catalyst_sim.backends.endpoints import Component
from catalyst_sim.model.resources import Sovereign

JWT_MOUNT = "jwt"
ESO_SERVICE_ACCOUNT = "external-secrets"
AUDIENCE = "openbao"
LOGIN_TOKEN_TTL = "10m"


def regions_of(sovereign: Sovereign) -> list[str]:
    return [region.region for region in sovereign.spec.regions]


def org_role(org: str) -> str:
    return f"org-{org}"


def org_subject(trust_domain: str, org: str) -> str:
    """The SVID the Org's secrets sync presents: its vcluster's host namespace is ``{org}`` (R-NAME-19)."""
    return f"spiffe://{trust_domain}/ns/{org}/sa/{ESO_SERVICE_ACCOUNT}"


class RegionalOpenBao:
    """A set of independent OpenBao servers, one per region, prepared for the secrets flow."""

    def __init__(self, run_dir: Path | str, regions: Iterable[str], *, trust_domain: str,
                 mode: Mode = "dev") -> None:
        self.regions = list(regions)
        if not self.regions:
            raise ValueError("a Sovereign needs at least one region to run OpenBao in")
        self.trust_domain = trust_domain
        self.mode = mode
        self.servers = {region: EmbeddedOpenBao(Path(run_dir), mode, name=f"{region}") for region in self.regions}
        self.jwks_url = ""
        self.organizations: set[str] = set()
        self.timings: dict[str, float] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, jwks_url: str) -> RegionalOpenBao:
        """Start every region's server in parallel and prepare it; all or nothing."""
        self.jwks_url = jwks_url
        began = time.perf_counter()
        try:
            with concurrent.futures.ThreadPoolExecutor(len(self.regions),
                                                       thread_name_prefix="catalyst-sim:openbao-start") as pool:
                for future in [pool.submit(self._start_one, region) for region in self.regions]:
                    future.result()
        except BaseException:
            self.stop()
            raise
        self.timings["start_all"] = time.perf_counter() - began
        return self

    def _start_one(self, region: str) -> None:
        began = time.perf_counter()
        server = self.servers[region].start()
        self.prepare(region)
        self.timings[f"{region}.process_ready"] = server.timings.get("process_ready", 0.0)
        self.timings[f"{region}.ready"] = time.perf_counter() - began

    def prepare(self, region: str) -> None:
        """KV v2 at ``org/``, the jwt auth method bound to the JWKS, and every known Org (idempotent)."""
        server = self.servers[region]
        server.enable_kv2(ORG_MOUNT)
        client = server.client()
        if f"{JWT_MOUNT}/" not in client.sys.list_auth_methods().get("data", {}):
            client.sys.enable_auth_method("jwt", path=JWT_MOUNT)
        client.write(f"auth/{JWT_MOUNT}/config", jwks_url=self.jwks_url)
        for org in sorted(self.organizations):
            self._add_org(region, org)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def stop_region(self, region: str) -> None:
        """The region's OpenBao goes down (SIGKILL, like a crash)."""
        self.server(region).kill()

    def restart_region(self, region: str) -> None:
        """Bring a region back; raft keeps its data, dev mode comes back empty and is re-prepared."""
        server = self.server(region)
        server.restart()
        self.prepare(region)

    def server(self, region: str) -> EmbeddedOpenBao:
        try:
            return self.servers[region]
        except KeyError:
            raise KeyError(f"no OpenBao in region {region!r} (regions: {', '.join(self.regions)})") from None

    def url(self, region: str) -> str:
        return self.server(region).url

    @property
    def version(self) -> str:
        return next(iter(self.servers.values())).version

    def component(self) -> Component:
        urls = ", ".join(f"{r}={s.url}" for r, s in self.servers.items() if s.port)
        return Component("openbao", real=True, implementation=f"OpenBao bao server ({self.mode} mode), "
                         f"one per region: {', '.join(self.regions)}", version=self.version, url=urls)

    # -- Organizations -----------------------------------------------------------------------------
    def add_organization(self, org: str) -> None:
        """The Org's read policy and jwt role in every running region."""
        self.organizations.add(org)
        for region, server in self.servers.items():
            if server.running:
                self._add_org(region, org)

    def _add_org(self, region: str, org: str) -> None:
        server = self.servers[region]
        policy = server.write_org_policy(org)
        server.client().write(
            f"auth/{JWT_MOUNT}/role/{org_role(org)}", role_type="jwt", user_claim="sub",
            bound_audiences=[AUDIENCE], bound_subject=org_subject(self.trust_domain, org),
            token_policies=[policy], token_ttl=LOGIN_TOKEN_TTL, token_max_ttl=LOGIN_TOKEN_TTL,
            token_no_default_policy=True,
            # OpenBao's defaults add 60-150 s of leeway; exp/nbf must be exact (see the svid module).
            clock_skew_leeway=-1, expiration_leeway=-1, not_before_leeway=-1)

    def reset(self) -> None:
        """Forget every Organization: their KV trees, roles and policies (servers keep running)."""
        orgs = set(self.organizations)
        self.organizations.clear()
        for server in self.servers.values():
            if not server.running:
                continue
            client = server.client()
            listed = _list(client, f"{ORG_MOUNT}/metadata")
            for org in orgs | {name.rstrip("/") for name in listed}:
                _delete_tree(client, f"{ORG_MOUNT}/metadata/{org}")
                client.delete(f"auth/{JWT_MOUNT}/role/{org_role(org)}")
                for writable in (False, True):
                    client.sys.delete_policy(org_policy_name(org, writable))

    # -- values (what a person or the provisioning writes; ESO only reads) -------------------------
    def admin(self, region: str) -> hvac.Client:
        return self.server(region).client()

    def write(self, path: str, values: dict[str, Any], regions: Iterable[str] | None = None) -> None:
        """Write a KV v2 secret at a spec path (``org/{org}/env/{env_type}/...``) in the given (default:
        every running) region."""
        mount, sub = _split(path)
        for region in regions or [r for r, s in self.servers.items() if s.running]:
            self.admin(region).secrets.kv.v2.create_or_update_secret(path=sub, secret=values, mount_point=mount)

    def read(self, path: str, region: str) -> dict[str, Any] | None:
        mount, sub = _split(path)
        try:
            found = self.admin(region).secrets.kv.v2.read_secret_version(
                path=sub, mount_point=mount, raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
        return dict(found["data"]["data"])

    def delete(self, path: str, regions: Iterable[str] | None = None) -> None:
        """Delete every version and the metadata of a secret."""
        mount, sub = _split(path)
        for region in regions or [r for r, s in self.servers.items() if s.running]:
            self.admin(region).secrets.kv.v2.delete_metadata_and_all_versions(path=sub, mount_point=mount)


def _split(path: str) -> tuple[str, str]:
    mount, _, sub = path.strip("/").partition("/")
    if not mount or not sub:
        raise ValueError(f"{path!r} is not an OpenBao KV path of the form '<mount>/<path>'")
    return mount, sub


def _list(client: hvac.Client, path: str) -> list[str]:
    try:
        listed = client.list(path)
    except hvac.exceptions.InvalidPath:
        return []
    return list(((listed or {}).get("data") or {}).get("keys") or [])


def _delete_tree(client: hvac.Client, metadata_path: str) -> None:
    """Delete a KV v2 subtree: every leaf's metadata (which removes all its versions)."""
    for key in _list(client, metadata_path):
        child = f"{metadata_path}/{key.rstrip('/')}"
        if key.endswith("/"):
            _delete_tree(client, child)
        else:
            client.delete(child)
    client.delete(metadata_path)
