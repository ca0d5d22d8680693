"""Catalyst naming rules (R-NAME-01..24) as small pure functions over constant tables.

Every name in a Sovereign is computed from typed dimensions (provider, region, building block,
env_type, org, app), so the harness derives names here instead of formatting strings ad hoc.
Three flavours per rule, so callers can pick the one that fits:

* ``problems_for_x(value, field=...) -> list[Problem]`` never raises; an empty list means valid;
* ``validate_x(value, field=...)`` raises :class:`CatalystError` listing those problems;
* ``is_valid_x(value) -> bool``.

Builders (``environment_name``, ``host_cluster_name`` ...) validate their inputs and raise
:class:`CatalystError`, so an invalid name can never be produced by this module.

Decisions and divergences (REQUIREMENTS §22/§23):

* D-01 / C-27: Organization and Sovereign names use ``^[a-z]([a-z0-9-]{1,30}[a-z0-9])$`` (no trailing
  ``-``), stricter than the documented regex.
* R-NAME-05 reserved list, extended: besides the documented words and every dimension code (long and
  1-char forms), ``catalog`` and ``catalog-sovereign`` are reserved because an Organization becomes a
  Gitea Org of the same name (R-NAME-13), and ``catalyst-*`` is reserved because an Organization is a
  namespace on the host cluster next to the ``catalyst-{component}`` namespaces (R-NAME-10). Both are
  in :data:`EXTRA_RESERVED_ORG_NAMES` / :data:`RESERVED_ORG_PREFIXES` so they can be dropped in one place.
* D-02: Application names are DNS-1123 labels (<=63) and never ``shared-blueprints``.
* D-04: ``.`` inside a NATS subject token is percent-encoded as ``%2E``; ``%`` itself is encoded as
  ``%25`` so decoding is lossless. KV keys keep raw names.
* D-14 / C-07: ``uat`` and ``poc`` Environments use branches ``uat`` and ``poc``; promotion order is
  develop -> staging -> uat -> main (``poc`` is outside the chain).
* C-24: the Blueprint OCI path is ``ghcr.io/openova-io/bp-<folder>`` (BPA form), overridable.
* R-NAME-02: providers without a region table (aws, gcp, az) have no valid region codes until the
  table is extended; nobody may invent codes, so they are rejected rather than guessed.
* R-NAME-16: the NATS Account of an Organization is named exactly ``{org}`` (the docs only say
  "one Account per Organization"); cluster-scoped objects use ``_`` as the namespace token, which
  no Kubernetes namespace can be.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, NamedTuple

import semver

from catalyst_sim.model.base import CatalystError, Problem

# --------------------------------------------------------------------------------------------------
# Shared helpers


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise CatalystError(problems)


def _problem(message: str, field: str) -> list[Problem]:
    return [Problem(message=message, field=field)]


def _not_a_string(value: object, what: str, field: str) -> list[Problem]:
    return _problem(f"{what} must be a string, got {type(value).__name__}", field)


# DNS-1123 label (Kubernetes namespace, Service, Gitea repo, DNS label): <=63, [a-z0-9-], alnum ends.
DNS1123_LABEL_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_SUBDOMAIN_MAX = 253


def problems_for_dns_label(value: object, field: str = "", *, what: str = "name") -> list[Problem]:
    """A DNS-1123 label: what every name used as namespace, repo or DNS label must be."""
    if not isinstance(value, str):
        return _not_a_string(value, what, field)
    if not value:
        return _problem(f"{what} must not be empty", field)
    if len(value) > DNS1123_LABEL_MAX:
        return _problem(f"{what} {value!r} is {len(value)} characters; a DNS-1123 label has at most "
                        f"{DNS1123_LABEL_MAX}", field)
    if not DNS1123_LABEL_PATTERN.match(value):
        return _problem(f"{what} {value!r} is not a DNS-1123 label: use lowercase letters, digits and "
                        "'-', starting and ending with a letter or digit (e.g. 'marketing-site')", field)
    return []


def problems_for_dns_subdomain(value: object, field: str = "", *, what: str = "name") -> list[Problem]:
    """A DNS-1123 subdomain (dot-separated labels, <=253), e.g. a Kubernetes ServiceAccount name."""
    if not isinstance(value, str):
        return _not_a_string(value, what, field)
    if not value or len(value) > DNS1123_SUBDOMAIN_MAX or not DNS1123_SUBDOMAIN_PATTERN.match(value):
        return _problem(f"{what} {value!r} is not a DNS-1123 subdomain: dot-separated lowercase labels "
                        f"of letters, digits and '-', at most {DNS1123_SUBDOMAIN_MAX} characters", field)
    return []


# --------------------------------------------------------------------------------------------------
# R-NAME-01 providers


@dataclass(frozen=True)
class Provider:
    """One cloud provider: the code used in names, the 1-char code used in location codes, and the
    lowercase full name used in ``Sovereign.spec.provider`` and the ``openova.io/provider`` tag."""

    code: str
    char: str
    name: str
    title: str


PROVIDERS: dict[str, Provider] = {
    p.code: p
    for p in (
        Provider("hz", "h", "hetzner", "Hetzner"),
        Provider("hw", "w", "huawei", "Huawei Cloud"),
        Provider("oci", "o", "oci", "OCI (Oracle Cloud)"),
        Provider("aws", "a", "aws", "AWS"),
        Provider("gcp", "g", "gcp", "GCP"),
        Provider("az", "z", "azure", "Azure"),
        Provider("ct", "c", "contabo", "Contabo"),
    )
}
PROVIDER_CODES: tuple[str, ...] = tuple(PROVIDERS)
PROVIDERS_BY_CHAR: dict[str, Provider] = {p.char: p for p in PROVIDERS.values()}
PROVIDERS_BY_NAME: dict[str, Provider] = {p.name: p for p in PROVIDERS.values()}


def problems_for_provider(code: object, field: str = "provider") -> list[Problem]:
    if not isinstance(code, str):
        return _not_a_string(code, "provider code", field)
    if code not in PROVIDERS:
        return _problem(f"unknown provider code {code!r}; expected one of {', '.join(PROVIDER_CODES)} "
                        "(R-NAME-01)", field)
    return []


def provider(code_or_name: str, field: str = "provider") -> Provider:
    """Look a provider up by code (``hz``) or full name (``hetzner``); raise if unknown."""
    found = PROVIDERS.get(code_or_name) or PROVIDERS_BY_NAME.get(code_or_name)
    if found is None:
        _raise(problems_for_provider(code_or_name, field))
    assert found is not None
    return found


# --------------------------------------------------------------------------------------------------
# R-NAME-02 regions (provider-scoped)


@dataclass(frozen=True)
class Region:
    provider: str
    code: str
    char: str
    location: str


def _regions(provider_code: str, *rows: tuple[str, str, str]) -> dict[str, Region]:
    return {code: Region(provider_code, code, char, location) for code, char, location in rows}


REGIONS: dict[str, dict[str, Region]] = {
    "hz": _regions("hz", ("fsn", "f", "Falkenstein DE"), ("nbg", "n", "Nuremberg DE"),
                   ("hel", "l", "Helsinki FI"), ("ash", "a", "Ashburn VA US"),
                   ("hil", "i", "Hillsboro OR US"), ("sin", "s", "Singapore SG")),
    "hw": _regions("hw", ("apse", "p", "AP Southeast Singapore"), ("cnn", "c", "CN North Beijing"),
                   ("las", "q", "LA South Sao Paulo"), ("mer", "r", "ME Riyadh")),
    "oci": _regions("oci", ("dxb", "x", "ME Dubai"), ("fra", "r", "EU Frankfurt"),
                    ("sg", "g", "AP Singapore"), ("iad", "d", "US Ashburn"), ("syd", "y", "AP Sydney")),
    "aws": {},
    "gcp": {},
    "az": {},
    "ct": _regions("ct", ("eu", "e", "EU generic")),
}


def problems_for_region_table(providers: Mapping[str, Provider] | None = None,
                              regions: Mapping[str, Mapping[str, Region]] | None = None) -> list[Problem]:
    """Check the collision rules of R-NAME-02 on a (possibly extended) table.

    A region's 1-char code must differ from its provider's 1-char code and from its sibling regions'
    (or a location code would be ambiguous), and a region code is never reused across providers.
    """
    providers = PROVIDERS if providers is None else providers
    regions = REGIONS if regions is None else regions
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    for prov_code, table in regions.items():
        prov = providers.get(prov_code)
        if prov is None:
            problems += _problem(f"regions listed for unknown provider {prov_code!r}", f"regions.{prov_code}")
            continue
        chars: dict[str, str] = {}
        for code, reg in table.items():
            where = f"regions.{prov_code}.{code}"
            if reg.char == prov.char:
                problems += _problem(f"region {code!r} reuses its provider's 1-char code {prov.char!r}; the "
                                     "provider's code takes precedence (R-NAME-02)", where)
            if reg.char in chars:
                problems += _problem(f"region {code!r} reuses 1-char code {reg.char!r} of region "
                                     f"{chars[reg.char]!r} of the same provider (R-NAME-02)", where)
            chars.setdefault(reg.char, code)
            if code in owner:
                problems += _problem(f"region code {code!r} is already used by provider {owner[code]!r} "
                                     "(R-NAME-02)", where)
            owner.setdefault(code, prov_code)
    return problems


def problems_for_region(provider_code: str, region_code: object, field: str = "region") -> list[Problem]:
    if problems := problems_for_provider(provider_code, "provider"):
        return [Problem(message=p.message, field=field) for p in problems]
    if not isinstance(region_code, str):
        return _not_a_string(region_code, "region code", field)
    table = REGIONS.get(provider_code, {})
    if region_code not in table:
        if not table:
            return _problem(f"provider {provider_code!r} has no region codes yet, so {region_code!r} is "
                            "unknown; the region table is extended only by PR (R-NAME-02)", field)
        return _problem(f"unknown region {region_code!r} for provider {provider_code!r}; expected one of "
                        f"{', '.join(table)} (R-NAME-02)", field)
    return []


def region(provider_code: str, region_code: str, field: str = "region") -> Region:
    _raise(problems_for_region(provider_code, region_code, field))
    return REGIONS[provider_code][region_code]


def regions_for(provider_code: str) -> tuple[Region, ...]:
    """Every region of a provider (by code or full name), in table order."""
    return tuple(REGIONS[provider(provider_code).code].values())


def find_region(region_code: str) -> Region | None:
    """The region with this code on whichever provider owns it (codes are unique, R-NAME-02)."""
    for table in REGIONS.values():
        if region_code in table:
            return table[region_code]
    return None


def problems_for_any_region(region_code: object, field: str = "region") -> list[Problem]:
    """A region code known for some provider, for objects that do not name their provider."""
    if not isinstance(region_code, str):
        return _not_a_string(region_code, "region code", field)
    if find_region(region_code) is None:
        known = ", ".join(code for table in REGIONS.values() for code in table)
        return _problem(f"unknown region code {region_code!r}; expected one of {known} (R-NAME-02)", field)
    return []


# --------------------------------------------------------------------------------------------------
# R-NAME-03 building blocks, R-NAME-04 env types

BUILDING_BLOCKS: dict[str, str] = {"rtz": "r", "dmz": "d", "mgt": "m"}
BUILDING_BLOCKS_BY_CHAR: dict[str, str] = {c: bb for bb, c in BUILDING_BLOCKS.items()}
ENV_TYPES: dict[str, str] = {"prod": "p", "stg": "s", "uat": "u", "dev": "d", "poc": "c"}
ENV_TYPES_BY_CHAR: dict[str, str] = {c: t for t, c in ENV_TYPES.items()}


def problems_for_building_block(value: object, field: str = "buildingBlock") -> list[Problem]:
    if not isinstance(value, str):
        return _not_a_string(value, "building block", field)
    if value not in BUILDING_BLOCKS:
        return _problem(f"unknown building block {value!r}; expected one of {', '.join(BUILDING_BLOCKS)} "
                        "(R-NAME-03)", field)
    return []


def problems_for_env_type(value: object, field: str = "envType") -> list[Problem]:
    if not isinstance(value, str):
        return _not_a_string(value, "env_type", field)
    if value not in ENV_TYPES:
        hint = " (DR is expressed through Placement, not an env_type)" if value == "dr" else ""
        return _problem(f"unknown env_type {value!r}; expected one of {', '.join(ENV_TYPES)}{hint} "
                        "(R-NAME-04)", field)
    return []


def validate_building_block(value: str, field: str = "buildingBlock") -> str:
    _raise(problems_for_building_block(value, field))
    return value


def validate_env_type(value: str, field: str = "envType") -> str:
    _raise(problems_for_env_type(value, field))
    return value


# --------------------------------------------------------------------------------------------------
# R-NAME-05 Organization, R-NAME-06 Sovereign (D-01)

SLUG_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{1,30}[a-z0-9])$")
SLUG_MIN, SLUG_MAX = 3, 32
DOCUMENTED_RESERVED_ORG_NAMES: frozenset[str] = frozenset(
    {"system", "flux", "crossplane", "catalyst", "gitea"})
EXTRA_RESERVED_ORG_NAMES: frozenset[str] = frozenset({"catalog", "catalog-sovereign"})
RESERVED_ORG_PREFIXES: tuple[str, ...] = ("kube-", "catalyst-")


def _dimension_codes() -> dict[str, str]:
    codes: dict[str, str] = {}
    for p in PROVIDERS.values():
        codes[p.code] = codes[p.char] = "a provider code"
    for table in REGIONS.values():
        for r in table.values():
            codes[r.code] = codes[r.char] = f"a {PROVIDERS[r.provider].title} region code"
    for bb, c in BUILDING_BLOCKS.items():
        codes[bb] = codes[c] = "a building-block code"
    for t, c in ENV_TYPES.items():
        codes[t] = codes[c] = "an env_type code"
    return codes


DIMENSION_CODES: dict[str, str] = _dimension_codes()
RESERVED_ORG_NAMES: frozenset[str] = (DOCUMENTED_RESERVED_ORG_NAMES | EXTRA_RESERVED_ORG_NAMES
                                      | frozenset(DIMENSION_CODES))


def _slug_reasons(name: str) -> list[str]:
    reasons = []
    if len(name) < SLUG_MIN or len(name) > SLUG_MAX:
        reasons.append(f"it is {len(name)} characters, but must be {SLUG_MIN}-{SLUG_MAX}")
    if not name[:1].isascii() or not name[:1].islower() or not name[:1].isalpha():
        reasons.append("it must start with a lowercase letter")
    bad = sorted({c for c in name if not (c.isascii() and (c.islower() or c.isdigit() or c == "-"))})
    if bad:
        reasons.append(f"it contains {', '.join(repr(c) for c in bad)}; only lowercase letters, digits "
                       "and '-' are allowed")
    if name.endswith("-"):
        reasons.append("it must not end with '-' (D-01)")
    if not reasons and not SLUG_PATTERN.match(name):  # defensive: keep message and regex in step
        reasons.append(f"it does not match {SLUG_PATTERN.pattern}")
    return reasons


def _slug_problems(name: object, field: str, what: str, rule: str, example: str) -> list[Problem]:
    if not isinstance(name, str):
        return _not_a_string(name, f"{what} name", field)
    reasons = _slug_reasons(name)
    if not reasons:
        return []
    hint = ""
    if name.lower() != name and not _slug_reasons(name.lower()):
        hint = f"; did you mean {name.lower()!r}?"
    return _problem(f"{what} name {name!r} is invalid: {'; '.join(reasons)}. A valid name is {SLUG_MIN}-"
                    f"{SLUG_MAX} lowercase letters, digits and '-', starting with a letter and not ending "
                    f"with '-', e.g. {example!r} ({rule}){hint}", field)


def reserved_org_name_reason(name: str) -> str | None:
    """Why ``name`` is reserved for an Organization, or ``None`` if it is not."""
    if name in DOCUMENTED_RESERVED_ORG_NAMES:
        return "it is a reserved system name"
    if name in EXTRA_RESERVED_ORG_NAMES:
        return "it is the name of a Catalyst Gitea Org (R-NAME-13)"
    if name in DIMENSION_CODES:
        return f"it equals {DIMENSION_CODES[name]}"
    for prefix in RESERVED_ORG_PREFIXES:
        if name.startswith(prefix):
            return f"names starting with {prefix!r} are reserved"
    return None


def problems_for_org_name(name: object, field: str = "metadata.name") -> list[Problem]:
    """R-NAME-05 with the stricter D-01 pattern and the reserved list."""
    if problems := _slug_problems(name, field, "Organization", "R-NAME-05, D-01", "acme"):
        return problems
    assert isinstance(name, str)
    reason = reserved_org_name_reason(name)
    if reason:
        suggestion = next((c for c in (f"{name}-org", f"org-{name}", "acme") if not _slug_reasons(c)
                           and reserved_org_name_reason(c) is None), "acme")
        return _problem(f"Organization name {name!r} is reserved: {reason}. Choose another name such as "
                        f"{suggestion!r} (R-NAME-05)", field)
    return []


def validate_org_name(name: str, field: str = "metadata.name") -> str:
    _raise(problems_for_org_name(name, field))
    return name


def is_valid_org_name(name: object) -> bool:
    return not problems_for_org_name(name)


validate_organization_name = validate_org_name  # long-form alias used by the control plane


def problems_for_sovereign_name(name: object, field: str = "metadata.name") -> list[Problem]:
    """R-NAME-06: same slug rule as an Organization (D-01); the reserved list does not apply, because a
    Sovereign name never shares a namespace with Gitea Orgs, namespaces or dimension codes."""
    return _slug_problems(name, field, "Sovereign", "R-NAME-06, D-01", "omantel")


def validate_sovereign_name(name: str, field: str = "metadata.name") -> str:
    _raise(problems_for_sovereign_name(name, field))
    return name


def is_valid_sovereign_name(name: object) -> bool:
    return not problems_for_sovereign_name(name)


# --------------------------------------------------------------------------------------------------
# R-NAME-07 Environment names

MAX_ENVIRONMENT_NAME_LENGTH = 37


class EnvironmentName(NamedTuple):
    organization: str
    env_type: str

    @property
    def name(self) -> str:
        return f"{self.organization}-{self.env_type}"

    def __str__(self) -> str:
        return self.name


def environment_name(organization: str, env_type: str) -> str:
    """``{org}-{env_type}``, e.g. ``acme-prod`` (R-NAME-07)."""
    _raise(problems_for_org_name(organization, "organization") + problems_for_env_type(env_type, "envType"))
    return f"{organization}-{env_type}"


def _parse_environment(name: object, field: str) -> tuple[EnvironmentName | None, list[Problem]]:
    if not isinstance(name, str):
        return None, _not_a_string(name, "Environment name", field)
    if len(name) > MAX_ENVIRONMENT_NAME_LENGTH:
        return None, _problem(f"Environment name {name!r} is {len(name)} characters; at most "
                              f"{MAX_ENVIRONMENT_NAME_LENGTH} (R-NAME-07)", field)
    org, sep, env_type = name.rpartition("-")
    if not sep or env_type not in ENV_TYPES:
        return None, _problem(f"Environment name {name!r} must be '{{org}}-{{env_type}}' with env_type "
                              f"one of {', '.join(ENV_TYPES)}, e.g. 'acme-prod' (R-NAME-07)", field)
    org_problems = problems_for_org_name(org, field)
    if org_problems:
        return None, _problem(f"Environment name {name!r} has an invalid organization part: "
                              f"{org_problems[0].message}", field)
    return EnvironmentName(org, env_type), []


def parse_environment_name(name: str, field: str = "metadata.name") -> EnvironmentName:
    """Split off the last ``-`` segment, which must be an env_type (R-NAME-07)."""
    parsed, problems = _parse_environment(name, field)
    _raise(problems)
    assert parsed is not None
    return parsed


def problems_for_environment_name(name: object, field: str = "metadata.name") -> list[Problem]:
    return _parse_environment(name, field)[1]


def is_valid_environment_name(name: object) -> bool:
    return not problems_for_environment_name(name)


# --------------------------------------------------------------------------------------------------
# R-NAME-08 host clusters, R-NAME-09 vclusters, R-NAME-10 namespaces, R-NAME-11 location codes

FAILOVER_ROLE_WORDS: frozenset[str] = frozenset(
    {"primary", "secondary", "dr", "standby", "failover", "backup", "active", "passive"})


class HostCluster(NamedTuple):
    """The four dimensions of a host cluster; ``name`` and ``location_code`` are derived from them."""

    provider: str
    region: str
    building_block: str
    env_type: str

    @property
    def name(self) -> str:
        return f"{self.provider}-{self.region}-{self.building_block}-{self.env_type}"

    @property
    def location_code(self) -> str:
        return (PROVIDERS[self.provider].char + REGIONS[self.provider][self.region].char
                + BUILDING_BLOCKS[self.building_block] + ENV_TYPES[self.env_type])

    def __str__(self) -> str:
        return self.name


def _dimension_problems(prov: str, reg: str, bb: str, env_type: str, field: str) -> list[Problem]:
    problems = problems_for_provider(prov, field)
    if not problems:
        problems += problems_for_region(prov, reg, field)
    problems += problems_for_building_block(bb, field)
    problems += problems_for_env_type(env_type, field)
    return problems


def host_cluster(provider_code: str, region_code: str, building_block: str, env_type: str,
                 field: str = "") -> HostCluster:
    """Validated dimensions; accepts the provider by code or full name."""
    prov = PROVIDERS_BY_NAME[provider_code].code if provider_code in PROVIDERS_BY_NAME else provider_code
    _raise(_dimension_problems(prov, region_code, building_block, env_type, field))
    return HostCluster(prov, region_code, building_block, env_type)


def host_cluster_name(provider_code: str, region_code: str, building_block: str, env_type: str) -> str:
    """``{prov}-{reg}-{bb}-{env_type}``, e.g. ``hz-fsn-rtz-prod`` (R-NAME-08)."""
    return host_cluster(provider_code, region_code, building_block, env_type).name


def _parse_host_cluster(name: object, field: str) -> tuple[HostCluster | None, list[Problem]]:
    if not isinstance(name, str):
        return None, _not_a_string(name, "host cluster name", field)
    parts = name.split("-")
    roles = [p for p in parts if p in FAILOVER_ROLE_WORDS]
    if roles:
        return None, _problem(f"host cluster name {name!r} uses the failover-role word {roles[0]!r}; "
                              "clusters are named by building block, never by role, as "
                              "'{prov}-{reg}-{bb}-{env_type}', e.g. 'hz-fsn-rtz-prod' (R-NAME-08)", field)
    if len(parts) != 4:
        return None, _problem(f"host cluster name {name!r} must be '{{prov}}-{{reg}}-{{bb}}-{{env_type}}', "
                              "e.g. 'hz-fsn-rtz-prod' (R-NAME-08)", field)
    problems = _dimension_problems(*parts, field=field)
    if problems:
        detail = "; ".join(p.message for p in problems)
        return None, _problem(f"host cluster name {name!r} is invalid: {detail}", field)
    return HostCluster(*parts), []


def parse_host_cluster_name(name: str, field: str = "hostCluster") -> HostCluster:
    parsed, problems = _parse_host_cluster(name, field)
    _raise(problems)
    assert parsed is not None
    return parsed


def problems_for_host_cluster_name(name: object, field: str = "hostCluster") -> list[Problem]:
    return _parse_host_cluster(name, field)[1]


def is_valid_host_cluster_name(name: object) -> bool:
    return not problems_for_host_cluster_name(name)


def vcluster_name(organization: str) -> str:
    """A vcluster inside a host cluster is named ``{org}`` (R-NAME-09)."""
    return validate_org_name(organization, "organization")


def vcluster_host_namespace(organization: str) -> str:
    """The namespace on the host that hosts the Org's vcluster is also ``{org}`` (R-NAME-09)."""
    return validate_org_name(organization, "organization")


def vcluster_context(cluster: str | HostCluster, organization: str) -> str:
    """Qualified kube context ``{prov}-{reg}-{bb}-{env_type}-{org}`` (R-NAME-09)."""
    hc = cluster if isinstance(cluster, HostCluster) else parse_host_cluster_name(cluster)
    return f"{hc.name}-{validate_org_name(organization, 'organization')}"


def parse_vcluster_context(context: str, field: str = "context") -> tuple[HostCluster, str]:
    """Split a qualified vcluster context into its host cluster and Organization."""
    parts = context.split("-") if isinstance(context, str) else []
    if len(parts) < 5:
        raise CatalystError.single(f"vcluster context {context!r} must be "
                                   "'{prov}-{reg}-{bb}-{env_type}-{org}', e.g. 'hz-fsn-rtz-prod-acme' "
                                   "(R-NAME-09)", field=field)
    cluster = parse_host_cluster_name("-".join(parts[:4]), field)
    org = validate_org_name("-".join(parts[4:]), field)
    return cluster, org


CONTROL_PLANE_NAMESPACE_PREFIX = "catalyst-"


def control_plane_namespace(component: str) -> str:
    """``catalyst-{component}`` for a Catalyst control-plane component on a host (R-NAME-10, C-10)."""
    ns = f"{CONTROL_PLANE_NAMESPACE_PREFIX}{component}"
    _raise(problems_for_dns_label(ns, "component", what="namespace"))
    return ns


def app_namespace(app: str) -> str:
    """Inside a vcluster each Application gets the namespace ``{app}`` (R-NAME-10)."""
    return validate_app_name(app, "application")


LOCATION_CODE_PATTERN = re.compile(r"^[hwoagzc][a-z][rdm][psudc]$")


def location_code(provider_code: str, region_code: str, building_block: str, env_type: str) -> str:
    """The 4-char ``{p}{r}{b}{e}`` code from the 1-char columns (R-NAME-11)."""
    return host_cluster(provider_code, region_code, building_block, env_type).location_code


def _parse_location(code: object, field: str) -> tuple[HostCluster | None, list[Problem]]:
    if not isinstance(code, str):
        return None, _not_a_string(code, "location code", field)
    if not LOCATION_CODE_PATTERN.match(code):
        return None, _problem(f"location code {code!r} must be 4 characters matching "
                              f"{LOCATION_CODE_PATTERN.pattern}, e.g. 'hfmp' (R-NAME-11)", field)
    prov = PROVIDERS_BY_CHAR[code[0]]
    reg = next((r for r in REGIONS[prov.code].values() if r.char == code[1]), None)
    if reg is None:
        known = ", ".join(f"{r.char} ({r.code})" for r in REGIONS[prov.code].values()) or "none yet"
        return None, _problem(f"location code {code!r}: {code[1]!r} is not a region of provider "
                              f"{prov.code!r}; its regions are {known} (R-NAME-02, R-NAME-11)", field)
    return HostCluster(prov.code, reg.code, BUILDING_BLOCKS_BY_CHAR[code[2]], ENV_TYPES_BY_CHAR[code[3]]), []


def parse_location_code(code: str, field: str = "locationCode") -> HostCluster:
    """Decode a location code back into its dimensions (each 1-char code is unambiguous per provider)."""
    parsed, problems = _parse_location(code, field)
    _raise(problems)
    assert parsed is not None
    return parsed


def problems_for_location_code(code: object, field: str = "locationCode") -> list[Problem]:
    return _parse_location(code, field)[1]


def is_valid_location_code(code: object) -> bool:
    return not problems_for_location_code(code)


# --------------------------------------------------------------------------------------------------
# R-NAME-12 DNS

def problems_for_domain(domain: object, field: str = "domain") -> list[Problem]:
    """A lowercase FQDN of at least two labels, as used for Sovereign and Org domains."""
    if not isinstance(domain, str):
        return _not_a_string(domain, "domain", field)
    labels = domain.split(".")
    if (len(labels) < 2 or len(domain) > DNS1123_SUBDOMAIN_MAX
            or any(problems_for_dns_label(label) for label in labels) or labels[-1].isdigit()):
        return _problem(f"domain {domain!r} is not a valid lowercase fully-qualified domain name with at "
                        "least two labels, e.g. 'omantel.openova.io' (R-NAME-12)", field)
    return []


def validate_domain(domain: str, field: str = "domain") -> str:
    _raise(problems_for_domain(domain, field))
    return domain


def control_plane_fqdn(component: str, location: str, sovereign_domain: str) -> str:
    """``{component}.{location-code}.{sovereign-domain}``, e.g. ``console.hfmp.openova.io``.

    R-NAME-12; C-11 notes that the real bootstrap uses ``console.<fqdn>`` without a location code."""
    _raise(problems_for_dns_label(component, "component", what="component")
           + problems_for_location_code(location, "locationCode")
           + problems_for_domain(sovereign_domain, "domain"))
    return f"{component}.{location}.{sovereign_domain}"


def app_fqdn(app: str, environment: str, domain: str) -> str:
    """``{app}.{environment}.{domain}`` where domain is the Sovereign's or a white-label Org's (R-NAME-12)."""
    _raise(problems_for_app_name(app, "application")
           + problems_for_environment_name(environment, "environment")
           + problems_for_domain(domain, "domain"))
    return f"{app}.{environment}.{domain}"


# --------------------------------------------------------------------------------------------------
# R-NAME-13/14 Gitea layout and branches (D-14)

GITEA_ORG_CATALOG = "catalog"
GITEA_ORG_CATALOG_SOVEREIGN = "catalog-sovereign"
GITEA_ORG_SYSTEM = "system"
SYSTEM_REPO_CATALYST_CONFIG = "catalyst-config"
SYSTEM_REPO_POLICY_BUNDLE = "policy-bundle"
SYSTEM_REPO_RUNBOOKS = "runbooks"
SYSTEM_REPOS: tuple[str, ...] = (SYSTEM_REPO_CATALYST_CONFIG, SYSTEM_REPO_POLICY_BUNDLE, SYSTEM_REPO_RUNBOOKS)
SHARED_BLUEPRINTS_REPO = "shared-blueprints"
GITEA_COMPONENT = "gitea"


def gitea_org(organization: str) -> str:
    """One Gitea Org per Catalyst Organization, named ``{org}`` (R-NAME-13)."""
    return validate_org_name(organization, "organization")


def app_repo(organization: str, app: str) -> str:
    """``{org}/{app}``: one repo per Application (R-NAME-13, R-APP-02)."""
    _raise(problems_for_org_name(organization, "organization") + problems_for_app_name(app, "application"))
    return f"{organization}/{app}"


def shared_blueprints_repo(organization: str) -> str:
    return f"{gitea_org(organization)}/{SHARED_BLUEPRINTS_REPO}"


def system_repo(repo: str) -> str:
    """``system/<repo>`` for one of the sovereign-admin repos (R-NAME-13)."""
    if repo not in SYSTEM_REPOS:
        raise CatalystError.single(f"unknown system repo {repo!r}; expected one of {', '.join(SYSTEM_REPOS)} "
                                   "(R-NAME-13)", field="repo")
    return f"{GITEA_ORG_SYSTEM}/{repo}"


def gitea_host(location: str, sovereign_domain: str) -> str:
    return control_plane_fqdn(GITEA_COMPONENT, location, sovereign_domain)


def app_repo_url(location: str, sovereign_domain: str, organization: str, app: str) -> str:
    """``gitea.{location-code}.{sovereign-domain}/{org}/{app}`` (R-NAME-14)."""
    return f"{gitea_host(location, sovereign_domain)}/{app_repo(organization, app)}"


ENV_TYPE_BRANCHES: dict[str, str] = {
    "dev": "develop", "stg": "staging", "uat": "uat", "prod": "main", "poc": "poc"}
BRANCH_ENV_TYPES: dict[str, str] = {b: t for t, b in ENV_TYPE_BRANCHES.items()}
PROMOTION_ORDER: tuple[str, ...] = ("develop", "staging", "uat", "main")


def branch_for_env_type(env_type: str) -> str:
    """develop/staging/main for dev/stg/prod (R-NAME-14); uat/poc per D-14."""
    return ENV_TYPE_BRANCHES[validate_env_type(env_type)]


def env_type_for_branch(branch: str, field: str = "branch") -> str:
    if branch not in BRANCH_ENV_TYPES:
        raise CatalystError.single(f"branch {branch!r} does not map to an env_type; expected one of "
                                   f"{', '.join(BRANCH_ENV_TYPES)} (R-NAME-14, D-14)", field=field)
    return BRANCH_ENV_TYPES[branch]


def promotion_chain(env_types: Iterable[str] | None = None) -> tuple[str, ...]:
    """The promotion branches in order, restricted to the env_types an Org actually has (D-14)."""
    wanted = None if env_types is None else {branch_for_env_type(t) for t in env_types}
    return tuple(b for b in PROMOTION_ORDER if wanted is None or b in wanted)


def promotion_target(source_branch: str, env_types: Iterable[str] | None = None) -> str | None:
    """The branch a promotion PR from ``source_branch`` targets: the next existing step of the chain,
    or ``None`` at the top (``main``) and for branches outside the chain (``poc``)."""
    chain = promotion_chain(env_types)
    env_type_for_branch(source_branch, "sourceBranch")
    if source_branch not in chain:
        return None
    index = chain.index(source_branch)
    return chain[index + 1] if index + 1 < len(chain) else None


# --------------------------------------------------------------------------------------------------
# R-NAME-15 EnvironmentPolicy

POLICY_NAMESPACE = "catalyst-system"
POLICY_DIR = "policies"
POLICY_SUFFIX = "-policy"


def policy_name(organization: str, env_type: str) -> str:
    """``{org}-{env_type}-policy`` (R-NAME-15)."""
    return f"{environment_name(organization, env_type)}{POLICY_SUFFIX}"


def policy_repo_path(organization: str, env_type: str) -> str:
    """Path inside ``system/catalyst-config``: ``policies/{org}-{env_type}-policy.yaml``."""
    return f"{POLICY_DIR}/{policy_name(organization, env_type)}.yaml"


def policy_file_path(organization: str, env_type: str) -> str:
    """Full path ``system/catalyst-config/policies/{org}-{env_type}-policy.yaml`` (R-NAME-15)."""
    return f"{GITEA_ORG_SYSTEM}/{SYSTEM_REPO_CATALYST_CONFIG}/{policy_repo_path(organization, env_type)}"


def _parse_policy(name: object, field: str) -> tuple[EnvironmentName | None, list[Problem]]:
    if not isinstance(name, str):
        return None, _not_a_string(name, "EnvironmentPolicy name", field)
    if not name.endswith(POLICY_SUFFIX):
        return None, _problem(f"EnvironmentPolicy name {name!r} must be '{{org}}-{{env_type}}-policy', "
                              "e.g. 'acme-prod-policy' (R-NAME-15)", field)
    env, problems = _parse_environment(name.removesuffix(POLICY_SUFFIX), field)
    if problems:
        return None, _problem(f"EnvironmentPolicy name {name!r} must be '{{org}}-{{env_type}}-policy', e.g. "
                              f"'acme-prod-policy': {problems[0].message} (R-NAME-15)", field)
    return env, []


def parse_policy_name(name: str, field: str = "metadata.name") -> EnvironmentName:
    """The destination Environment a policy is named after."""
    parsed, problems = _parse_policy(name, field)
    _raise(problems)
    assert parsed is not None
    return parsed


def problems_for_policy_name(name: object, field: str = "metadata.name") -> list[Problem]:
    return _parse_policy(name, field)[1]


# --------------------------------------------------------------------------------------------------
# R-NAME-16 NATS (D-04), R-NAME-17 KV, R-NAME-18 OpenBao, R-NAME-19 SPIFFE

ENV_SUBJECT_ROOT = "ws"
CUTOVER_SUBJECT_PREFIX = "catalyst.cutover"
CUTOVER_SUBJECT_FILTER = f"{CUTOVER_SUBJECT_PREFIX}.*"
SUBJECT_FAMILIES: dict[str, int] = {"k8s": 3, "flux": 1, "git": 1, "crossplane": 1}  # family -> token count
CLUSTER_SCOPE_TOKEN = "_"
_SUBJECT_FORBIDDEN = re.compile(r"[\s*>]")
_ENCODE = {"%": "%25", ".": "%2E"}


def encode_subject_token(token: str, field: str = "token") -> str:
    """Make one NATS subject token from a raw name: ``.`` -> ``%2E`` (D-04), ``%`` -> ``%25``.

    Whitespace, ``*`` and ``>`` cannot appear in any Kubernetes or Git name, so they are rejected
    rather than encoded: a token must never turn into a wildcard.
    """
    if not isinstance(token, str) or not token:
        raise CatalystError.single("a NATS subject token must be a non-empty string", field=field)
    if _SUBJECT_FORBIDDEN.search(token):
        raise CatalystError.single(f"{token!r} cannot be a NATS subject token: it contains whitespace, "
                                   "'*' or '>' (R-NAME-16)", field=field)
    return "".join(_ENCODE.get(c, c) for c in token)


def decode_subject_token(token: str) -> str:
    return re.sub(r"%(25|2E)", lambda m: "%" if m.group(1) == "25" else ".", token, flags=re.IGNORECASE)


def nats_account(organization: str) -> str:
    """One NATS Account per Organization, named ``{org}`` (R-NAME-16)."""
    return validate_org_name(organization, "organization")


def env_subject_prefix(environment: str) -> str:
    """``ws.{org}-{env_type}`` (R-NAME-16)."""
    _raise(problems_for_environment_name(environment, "environment"))
    return f"{ENV_SUBJECT_ROOT}.{environment}"


def env_subject_filter(environment: str) -> str:
    """``ws.{org}-{env_type}.>``: everything of one Environment."""
    return f"{env_subject_prefix(environment)}.>"


def k8s_subject(environment: str, kind: str, namespace: str | None, name: str) -> str:
    """``ws.<env>.k8s.<obj-kind>.<ns>.<name>``; a cluster-scoped object uses ``_`` as namespace."""
    ns = encode_subject_token(namespace, "namespace") if namespace else CLUSTER_SCOPE_TOKEN
    return (f"{env_subject_prefix(environment)}.k8s.{encode_subject_token(kind, 'kind')}.{ns}."
            f"{encode_subject_token(name, 'name')}")


def flux_subject(environment: str, kustomization: str) -> str:
    """``ws.<env>.flux.<kustomization>`` (R-NAME-16, R-FLUX-04)."""
    return f"{env_subject_prefix(environment)}.flux.{encode_subject_token(kustomization, 'kustomization')}"


def git_subject(environment: str, commit: str) -> str:
    """``ws.<env>.git.<commit-hash>`` (R-NAME-16, R-GIT-03)."""
    if not isinstance(commit, str) or not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        raise CatalystError.single(f"{commit!r} is not a lowercase hex commit hash", field="commit")
    return f"{env_subject_prefix(environment)}.git.{commit}"


def crossplane_subject(environment: str, resource: str) -> str:
    """``ws.<env>.crossplane.<resource>`` (R-NAME-16)."""
    return f"{env_subject_prefix(environment)}.crossplane.{encode_subject_token(resource, 'resource')}"


def cutover_subject(event: str) -> str:
    """``catalyst.cutover.<event>`` for the cutover audit trail (R-NAME-16, R-CUT-06)."""
    return f"{CUTOVER_SUBJECT_PREFIX}.{encode_subject_token(event, 'event')}"


class EnvSubject(NamedTuple):
    environment: str
    family: str
    tokens: tuple[str | None, ...]  # decoded; for k8s: (kind, namespace or None, name)


def parse_env_subject(subject: str, field: str = "subject") -> EnvSubject:
    """Inverse of the ``*_subject`` builders; tokens are percent-decoded."""
    parts = subject.split(".") if isinstance(subject, str) else []
    if len(parts) < 4 or parts[0] != ENV_SUBJECT_ROOT or parts[2] not in SUBJECT_FAMILIES:
        raise CatalystError.single(f"{subject!r} is not an Environment subject 'ws.<env>.<family>...' with "
                                   f"family one of {', '.join(SUBJECT_FAMILIES)} (R-NAME-16)", field=field)
    env, family, rest = parts[1], parts[2], parts[3:]
    _raise(problems_for_environment_name(env, field))
    if len(rest) != SUBJECT_FAMILIES[family]:
        raise CatalystError.single(f"{subject!r}: a {family} subject has {SUBJECT_FAMILIES[family]} token(s) "
                                   "after the family (R-NAME-16)", field=field)
    tokens: list[str | None] = [decode_subject_token(t) for t in rest]
    if family == "k8s" and rest[1] == CLUSTER_SCOPE_TOKEN:
        tokens[1] = None
    return EnvSubject(env, family, tuple(tokens))


def kv_bucket(environment: str) -> str:
    """``ws-{org}-{env_type}-state``: one KV bucket per Environment (R-NAME-17)."""
    _raise(problems_for_environment_name(environment, "environment"))
    return f"ws-{environment}-state"


_KV_TOKEN = re.compile(r"^[-_=.A-Za-z0-9]+$")


def kv_key(kind: str, name: str) -> str:
    """``<kind>/<name>`` with the raw name (D-04); NATS KV keys allow ``.`` but not ``/`` inside a part."""
    for value, what in ((kind, "kind"), (name, "name")):
        if not isinstance(value, str) or not _KV_TOKEN.match(value):
            raise CatalystError.single(f"KV key {what} {value!r} must be non-empty and use only letters, "
                                       "digits, '-', '_', '=' and '.' (R-NAME-17)", field=what)
    return f"{kind}/{name}"


def parse_kv_key(key: str) -> tuple[str, str]:
    kind, sep, name = key.partition("/") if isinstance(key, str) else ("", "", "")
    if not sep:
        raise CatalystError.single(f"KV key {key!r} must be '<kind>/<name>' (R-NAME-17)", field="key")
    kv_key(kind, name)
    return kind, name


def openbao_env_root(organization: str, env_type: str) -> str:
    """``org/{org}/env/{env_type}/``: the OpenBao path root of one Environment (R-NAME-18)."""
    _raise(problems_for_org_name(organization, "organization") + problems_for_env_type(env_type, "envType"))
    return f"org/{organization}/env/{env_type}/"


def openbao_path(organization: str, env_type: str, *parts: str) -> str:
    """A path below the Environment root, e.g. ``org/acme/env/prod/marketing-site/db``; parts may not
    be empty or escape the root with ``..``."""
    segments = [seg for part in parts for seg in str(part).strip("/").split("/")]
    bad = [seg for seg in segments if seg in ("", ".", "..")]
    if bad or not segments:
        raise CatalystError.single(f"OpenBao path parts {list(parts)!r} must be non-empty and stay below the "
                                   "Environment root (R-NAME-18)", field="path")
    return openbao_env_root(organization, env_type) + "/".join(segments)


SPIFFE_SCHEME = "spiffe://"


class SpiffeId(NamedTuple):
    trust_domain: str
    namespace: str
    service_account: str

    def __str__(self) -> str:
        return f"{SPIFFE_SCHEME}{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"


def spiffe_id(sovereign: str, namespace: str, service_account: str) -> str:
    """``spiffe://<sovereign>/ns/<ns>/sa/<sa>``; the trust domain is the Sovereign *name* (R-NAME-19)."""
    _raise(problems_for_sovereign_name(sovereign, "sovereign")
           + problems_for_dns_label(namespace, "namespace", what="namespace")
           + problems_for_dns_subdomain(service_account, "serviceAccount", what="service account"))
    return str(SpiffeId(sovereign, namespace, service_account))


def parse_spiffe_id(uri: str, field: str = "spiffeId") -> SpiffeId:
    match = re.fullmatch(r"spiffe://([^/]+)/ns/([^/]+)/sa/([^/]+)", uri) if isinstance(uri, str) else None
    if not match:
        raise CatalystError.single(f"{uri!r} is not a workload SPIFFE ID 'spiffe://<sovereign>/ns/<namespace>/"
                                   "sa/<serviceaccount>' (R-NAME-19)", field=field)
    spiffe_id(*match.groups())
    return SpiffeId(*match.groups())


# --------------------------------------------------------------------------------------------------
# R-NAME-20 Blueprints, R-NAME-21 dependency Apps, R-NAME-22 Application names (D-02)

BLUEPRINT_PREFIX = "bp-"
BLUEPRINT_OCI_REGISTRY = "ghcr.io/openova-io"
RELEASE_AREAS: tuple[str, ...] = ("platform", "products")
SHARED_PREFIX = "shared-"
RESERVED_APP_NAMES: frozenset[str] = frozenset({SHARED_BLUEPRINTS_REPO})


def problems_for_app_name(name: object, field: str = "metadata.name") -> list[Problem]:
    """D-02: DNS-1123 label, at most 63, never ``shared-blueprints`` (R-NAME-22)."""
    problems = problems_for_dns_label(name, field, what="Application name")
    if problems:
        return [Problem(message=f"{p.message} (R-NAME-22, D-02)", field=field) for p in problems]
    if name in RESERVED_APP_NAMES:
        return _problem(f"Application name {name!r} is reserved: the Org's Gitea Org already has a repo of "
                        "that name (R-NAME-13, D-02)", field)
    return []


def validate_app_name(name: str, field: str = "metadata.name") -> str:
    _raise(problems_for_app_name(name, field))
    return name


def is_valid_app_name(name: object) -> bool:
    return not problems_for_app_name(name)


validate_application_name = validate_app_name  # long-form alias used by the control plane


def problems_for_blueprint_folder(folder: object, field: str = "folder") -> list[Problem]:
    problems = problems_for_dns_label(folder, field, what="Blueprint folder")
    if problems:
        return problems
    assert isinstance(folder, str)
    if folder.startswith(BLUEPRINT_PREFIX):
        return _problem(f"Blueprint folder {folder!r} must not itself start with {BLUEPRINT_PREFIX!r}", field)
    if len(BLUEPRINT_PREFIX + folder) > DNS1123_LABEL_MAX:
        return _problem(f"Blueprint name 'bp-{folder}' would exceed {DNS1123_LABEL_MAX} characters", field)
    return []


def problems_for_blueprint_name(name: object, field: str = "metadata.name") -> list[Problem]:
    """``bp-<folder>`` where the folder is a DNS-1123 label (R-NAME-20)."""
    if not isinstance(name, str):
        return _not_a_string(name, "Blueprint name", field)
    if not name.startswith(BLUEPRINT_PREFIX):
        return _problem(f"Blueprint name {name!r} must be 'bp-<folder>', e.g. 'bp-wordpress' (R-NAME-20)",
                        field)
    inner = problems_for_blueprint_folder(name.removeprefix(BLUEPRINT_PREFIX), field)
    if inner:
        return _problem(f"Blueprint name {name!r} must be 'bp-<folder>' with a DNS-1123 folder name: "
                        f"{inner[0].message} (R-NAME-20)", field)
    return []


def is_valid_blueprint_name(name: object) -> bool:
    return not problems_for_blueprint_name(name)


def blueprint_name(folder: str) -> str:
    """``bp-<folder>``, also the Chart.yaml ``name`` (R-NAME-20)."""
    _raise(problems_for_blueprint_folder(folder))
    return BLUEPRINT_PREFIX + folder


def blueprint_folder(name: str, field: str = "blueprint") -> str:
    _raise(problems_for_blueprint_name(name, field))
    return name.removeprefix(BLUEPRINT_PREFIX)


def problems_for_semver(version: object, field: str = "version") -> list[Problem]:
    """A full SemVer 2.0 version such as ``1.3.0`` (no leading ``v``)."""
    if not isinstance(version, str):
        return _not_a_string(version, "version", field)
    try:
        semver.Version.parse(version)
    except ValueError:
        hint = " (drop the leading 'v')" if version.startswith("v") else ""
        return _problem(f"version {version!r} is not a SemVer version such as '1.3.0'{hint}", field)
    return []


def _folder_of(folder_or_name: str) -> str:
    if folder_or_name.startswith(BLUEPRINT_PREFIX):
        return blueprint_folder(folder_or_name)
    _raise(problems_for_blueprint_folder(folder_or_name))
    return folder_or_name


def blueprint_oci_ref(folder_or_name: str, version: str, registry: str = BLUEPRINT_OCI_REGISTRY) -> str:
    """``ghcr.io/openova-io/bp-<folder>:<semver>`` (R-NAME-20; path form per C-24)."""
    folder = _folder_of(folder_or_name)
    _raise(problems_for_semver(version))
    return f"{registry.rstrip('/')}/{BLUEPRINT_PREFIX}{folder}:{version}"


class ReleaseTag(NamedTuple):
    area: str
    folder: str
    version: str

    def __str__(self) -> str:
        return f"{self.area}/{self.folder}/v{self.version}"


def blueprint_release_tag(area: str, folder_or_name: str, version: str) -> str:
    """``platform/<folder>/vX.Y.Z`` or ``products/<folder>/vX.Y.Z`` (R-NAME-20)."""
    if area not in RELEASE_AREAS:
        raise CatalystError.single(f"release area {area!r} must be one of {', '.join(RELEASE_AREAS)} "
                                   "(R-NAME-20)", field="area")
    folder = _folder_of(folder_or_name)
    _raise(problems_for_semver(version))
    return str(ReleaseTag(area, folder, version))


def parse_release_tag(tag: str, field: str = "tag") -> ReleaseTag:
    parts = tag.split("/") if isinstance(tag, str) else []
    if len(parts) != 3 or not parts[2].startswith("v"):
        raise CatalystError.single(f"release tag {tag!r} must be '<platform|products>/<folder>/vX.Y.Z' "
                                   "(R-NAME-20)", field=field)
    blueprint_release_tag(parts[0], parts[1], parts[2][1:])
    return ReleaseTag(parts[0], parts[1], parts[2][1:])


def dedicated_dependency_name(app: str, blueprint: str) -> str:
    """``{app}-{blueprint-without-bp-}``, e.g. ``marketing-site-postgres`` (R-NAME-21)."""
    name = f"{validate_app_name(app, 'application')}-{_folder_of(blueprint)}"
    _raise(problems_for_app_name(name, "name"))
    return name


def shared_service_name(service: str) -> str:
    """``shared-{x}`` for a bundle-level shared service, e.g. ``shared-postgres`` (R-NAME-21)."""
    base = service.removeprefix(BLUEPRINT_PREFIX) if isinstance(service, str) else service
    name = f"{SHARED_PREFIX}{base}"
    _raise(problems_for_app_name(name, "name"))
    return name


# --------------------------------------------------------------------------------------------------
# R-NAME-23 labels

LABEL_PREFIX = "openova.io/"
WORKLOAD_LABEL_KEYS: tuple[str, ...] = tuple(
    LABEL_PREFIX + k for k in ("sovereign", "organization", "environment", "vcluster", "host-cluster",
                               "application", "blueprint", "blueprint-version"))
CLOUD_LABEL_KEYS: tuple[str, ...] = tuple(
    LABEL_PREFIX + k for k in ("provider", "region", "building-block", "env-type", "cluster", "managed-by"))
K8S_LABEL_PREFIX = "app.kubernetes.io/"
MANAGED_BY_VALUES: tuple[str, ...] = ("catalyst", "crossplane", "opentofu", "manual")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def problems_for_labels(labels: object, field: str = "metadata.labels") -> list[Problem]:
    """Kubernetes label syntax: ``[prefix/]name`` keys and <=63-char values."""
    if not isinstance(labels, Mapping):
        return _problem("labels must be a mapping of strings to strings", field)
    problems: list[Problem] = []
    for key, value in labels.items():
        where = f"{field}[{key}]"
        if not isinstance(key, str):
            problems += _problem(f"label key {key!r} must be a string", field)
            continue
        prefix, _, name = key.rpartition("/")
        if (not name or len(name) > 63 or not _LABEL_NAME.match(name)
                or (prefix and problems_for_dns_subdomain(prefix))):
            problems += _problem(f"label key {key!r} must be '[dns-prefix/]name' with a name of at most 63 "
                                 "letters, digits, '-', '_' or '.'", where)
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_NAME.match(value):
            problems += _problem(f"label value {value!r} must be a string of at most 63 letters, digits, "
                                 "'-', '_' or '.', beginning and ending with a letter or digit", where)
    return problems


def workload_labels(*, sovereign: str, organization: str, environment: str, host_cluster: str,
                    application: str, blueprint: str, blueprint_version: str) -> dict[str, str]:
    """The ``openova.io/*`` set every Catalyst workload carries (R-NAME-23); vcluster = ``{org}``."""
    _raise(problems_for_sovereign_name(sovereign, "sovereign")
           + problems_for_org_name(organization, "organization")
           + problems_for_environment_name(environment, "environment")
           + problems_for_host_cluster_name(host_cluster, "hostCluster")
           + problems_for_app_name(application, "application")
           + problems_for_blueprint_name(blueprint, "blueprint")
           + problems_for_semver(blueprint_version, "blueprintVersion"))
    values = (sovereign, organization, environment, organization, host_cluster, application, blueprint,
              blueprint_version)
    return dict(zip(WORKLOAD_LABEL_KEYS, values, strict=True))


def cloud_resource_labels(*, provider_code: str, region_code: str, building_block: str, env_type: str,
                          managed_by: str = "catalyst") -> dict[str, str]:
    """The ``openova.io/*`` tags of a cloud resource (R-NAME-23); the provider tag is the full name."""
    hc = host_cluster(provider_code, region_code, building_block, env_type)
    if managed_by not in MANAGED_BY_VALUES:
        raise CatalystError.single(f"managed-by {managed_by!r} must be one of {', '.join(MANAGED_BY_VALUES)}",
                                   field="managedBy")
    values = (PROVIDERS[hc.provider].name, hc.region, hc.building_block, hc.env_type, hc.name, managed_by)
    return dict(zip(CLOUD_LABEL_KEYS, values, strict=True))


def kubernetes_labels(*, name: str, instance: str, managed_by: str = "flux", component: str | None = None,
                      part_of: str | None = None, version: str | None = None) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels the projector tracks objects by (R-NAME-23)."""
    labels = {f"{K8S_LABEL_PREFIX}name": name, f"{K8S_LABEL_PREFIX}instance": instance,
              f"{K8S_LABEL_PREFIX}managed-by": managed_by}
    optional = {"component": component, "part-of": part_of, "version": version}
    labels.update({f"{K8S_LABEL_PREFIX}{k}": v for k, v in optional.items() if v is not None})
    _raise(problems_for_labels(labels, "labels"))
    return labels


def problems_for_workload_labels(labels: Mapping[str, str], field: str = "metadata.labels") -> list[Problem]:
    """Every required ``openova.io/*`` workload label and at least one ``app.kubernetes.io/*`` label."""
    problems = problems_for_labels(labels, field)
    missing = [k for k in WORKLOAD_LABEL_KEYS if k not in labels]
    if missing:
        problems += _problem(f"missing workload labels {', '.join(missing)} (R-NAME-23)", field)
    if not any(k.startswith(K8S_LABEL_PREFIX) for k in labels):
        problems += _problem("missing app.kubernetes.io/* labels; the projector tracks objects by them "
                             "(R-NAME-23)", field)
    return problems


# --------------------------------------------------------------------------------------------------
# R-NAME-24 banned terms
#
# Word-boundary choice. A term is flagged only as a whole word (plural 's' allowed), where a word is
# a maximal run of ASCII letters and digits: "JobTemplate" and "templated" are different words and
# never match, while "tenant-id" and "per-tenant" do (the hyphen separates words). Whitespace-separated chunks
# that are technical tokens -- paths, URLs, file names, dotted names, identifiers with '_' (e.g.
# "clusters/_template/bootstrap-kit", "app.kubernetes.io/instance") -- name external artifacts and are
# skipped in prose. Field names (mapping keys) are identifiers, so they are split at camelCase, '_',
# '-' and '.' ("tenantId" -> tenant, id) and linted word by word; label keys outside the openova.io
# namespace are external standards and skipped. The exemptions the glossary grants to external
# technologies (Kubernetes operator, OIDC client, Go module, Kubernetes/prompt template, Matrix
# Synapse, Terraform workspace, EC2 instance ...) are recognised by the neighbouring word, e.g.
# "oauth-client-secret" (R-BP-07) or "jobTemplate". Anything else can be allowed per call with
# ``allow=`` phrases.


@dataclass(frozen=True)
class BannedTerm:
    term: str
    use_instead: str
    words: tuple[str, ...]
    exempt_before: frozenset[str] = frozenset()
    exempt_after: frozenset[str] = frozenset()


def _fs(*words: str) -> frozenset[str]:
    return frozenset(words)


BANNED_TERMS: tuple[BannedTerm, ...] = (
    BannedTerm("Tenant", "Organization", ("tenant",)),
    BannedTerm("Operator", "sovereign-admin", ("operator",),
               _fs("kubernetes", "k8s", "kube", "crd", "controller", "trivy", "knative", "prometheus",
                   "gateway"),
               _fs("pattern", "sdk", "framework", "hub")),
    BannedTerm("Client", "User", ("client",),
               _fs("oidc", "oauth", "oauth2", "keycloak", "http", "https", "api", "nats", "kubernetes", "k8s",
                   "git", "grpc", "sdk", "python", "go", "rest", "db", "database", "hvac", "httpx",
                   "websocket", "sse", "s3"),
               _fs("id", "ids", "secret", "secrets", "credential", "credentials", "certificate", "cert",
                   "library", "libraries", "scope", "scopes", "registration", "side")),
    BannedTerm("Module", "Blueprint", ("module",),
               _fs("go", "terraform", "opentofu", "tofu", "helm", "python", "node", "npm", "kernel", "js",
                   "javascript", "nginx", "lua")),
    BannedTerm("Template", "Blueprint", ("template",),
               _fs("kubernetes", "k8s", "kube", "pod", "job", "prompt", "scaffold", "go", "helm", "jinja",
                   "html", "text", "cloudinit", "init", "volume", "claim", "email")),
    BannedTerm("Workspace", "Environment", ("workspace",),
               _fs("terraform", "tofu", "opentofu", "slack", "vs", "vscode", "code", "npm", "yarn", "pnpm",
                   "cargo", "bazel", "go")),
    BannedTerm("Instance", "Application", ("instance",),
               _fs("ec2", "vm", "compute", "cloud", "server", "database", "db", "kubernetes", "k8s",
                   "keycloak", "gitea", "nats", "openbao", "postgres", "postgresql", "redis", "valkey",
                   "harbor")),
    BannedTerm("Lifecycle Manager", "Catalyst", ("lifecycle", "manager")),
    BannedTerm("Bootstrap wizard", "Catalyst bootstrap", ("bootstrap", "wizard")),
    BannedTerm("Backstage", "Catalyst console", ("backstage",)),
    BannedTerm("Synapse", "Axon (or Matrix/Synapse for the chat server)", ("synapse",), _fs("matrix")),
)


@dataclass(frozen=True)
class BannedTermHit:
    """One banned term found: the canonical term, the text as written and where it was found."""

    term: str
    found: str
    where: str = ""
    line: int = 1
    column: int = 1
    use_instead: str = dc_field(default="", compare=False)

    def __str__(self) -> str:
        at = f"{self.where}:" if self.where else ""
        return (f"{at}{self.line}:{self.column}: banned term {self.found!r} ({self.term}); use "
                f"{self.use_instead!r} instead (R-NAME-24)")


class _Word(NamedTuple):
    text: str  # lower-case
    start: int
    end: int


_TECHNICAL_CHUNK = re.compile(r"://|/|_|\{\{|@|\w\.\w|`")


def _prose_words(text: str) -> list[_Word]:
    words: list[_Word] = []
    for chunk in re.finditer(r"\S+", text):
        if _TECHNICAL_CHUNK.search(chunk.group()):
            continue
        for m in re.finditer(r"[A-Za-z0-9]+", chunk.group()):
            words.append(_Word(m.group().lower(), chunk.start() + m.start(), chunk.start() + m.end()))
    return words


_IDENT_WORD = re.compile(r"[A-Z]+[0-9]*(?![a-z])|[A-Z]?[a-z][a-z0-9]*|[0-9]+")


def _identifier_words(name: str) -> list[_Word]:
    return [_Word(m.group().lower(), m.start(), m.end()) for m in _IDENT_WORD.finditer(name)]


def _matches(word: str, expected: str) -> bool:
    return word == expected or word == expected + "s"


def _scan(source: str, words: list[_Word], where: str) -> list[BannedTermHit]:
    hits: list[BannedTermHit] = []
    for i in range(len(words)):
        for bt in BANNED_TERMS:
            n = len(bt.words)
            span = words[i:i + n]
            if len(span) < n or not all(_matches(w.text, e) for w, e in zip(span, bt.words, strict=True)):
                continue
            before = words[i - 1].text if i > 0 else ""
            after = words[i + n].text if i + n < len(words) else ""
            if before in bt.exempt_before or after in bt.exempt_after:
                continue
            start, end = span[0].start, span[-1].end
            line = source.count("\n", 0, start) + 1
            column = start - (source.rfind("\n", 0, start) + 1) + 1
            hits.append(BannedTermHit(bt.term, source[start:end], where, line, column, bt.use_instead))
    return hits


def _mask(text: str, allow: Iterable[str]) -> str:
    for phrase in allow:
        if phrase:
            text = re.sub(re.escape(phrase), lambda m: " " * len(m.group()), text, flags=re.IGNORECASE)
    return text


def find_banned_terms(text: str, where: str = "", allow: Iterable[str] = ()) -> list[BannedTermHit]:
    """Banned terms in a user-facing string (prose rules above); ``allow`` phrases are ignored."""
    masked = _mask(text, allow)
    return _scan(text, _prose_words(masked), where)


def find_banned_terms_in_name(name: str, where: str = "") -> list[BannedTermHit]:
    """Banned terms in an API field name or other identifier (``tenantId``, ``workspace_name``)."""
    if "/" in name:
        prefix, _, rest = name.rpartition("/")
        if not (prefix == LABEL_PREFIX.rstrip("/") or prefix.endswith("." + LABEL_PREFIX.rstrip("/"))):
            return []  # a label/annotation key of another standard, e.g. app.kubernetes.io/instance
        hits = _scan(rest, _identifier_words(rest), where)
        offset = len(prefix) + 1
        return [BannedTermHit(h.term, h.found, h.where, 1, h.column + offset, h.use_instead) for h in hits]
    return _scan(name, _identifier_words(name), where)


def lint_banned_terms(value: Any, where: str = "", allow: Iterable[str] = ()) -> list[BannedTermHit]:
    """Walk a document (mappings, lists, strings): keys as field names, string values as prose.

    ``where`` of each hit is the field path (``spec.card.title``, ``items[2]``).
    """
    allow = tuple(allow)
    hits: list[BannedTermHit] = []
    if isinstance(value, str):
        return find_banned_terms(value, where, allow)
    if isinstance(value, Mapping):
        for key, item in value.items():
            key_text = str(key)
            path = f"{where}.{key_text}" if where else key_text
            if "/" in key_text or "." in key_text:
                path = f"{where}[{key_text}]" if where else key_text
            hits += find_banned_terms_in_name(key_text, path)
            hits += lint_banned_terms(item, path, allow)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for index, item in enumerate(value):
            hits += lint_banned_terms(item, f"{where}[{index}]", allow)
    return hits


def problems_for_banned_terms(hits: Iterable[BannedTermHit], *, source: str = "") -> list[Problem]:
    return [Problem(message=f"banned term {h.found!r} ({h.term}); use {h.use_instead!r} instead (R-NAME-24)",
                    field=h.where, source=source) for h in hits]
