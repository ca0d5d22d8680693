"""The Catalyst kinds the control plane stores in ``system/catalyst-config`` and App repos.

Sovereign (R-SOV-01..04), Organization (R-ORG-01), Environment (R-ENV-01), Application (R-APP-01,
D-05) and EnvironmentPolicy (R-EP-01). No upstream Go types exist for these kinds (R-CRD-01), so
these shapes are the contract; every rule is enforced at load time with an error that names the
field, because a CR that is merely "probably right" would fail much later inside a controller.

Decisions and divergences:

* Application objects are namespaced by their Environment: ``metadata.namespace`` defaults to, and
  must equal, ``spec.environment``, because R-APP-04 allows the same App name in several
  Environments (and Orgs) and object identity must stay unique.
* Sovereign regions each need ``mgt`` and ``rtz`` (R-SOV-01). Note NAME §7 draws a single mgt region
  next to rtz-only regions; R-SOV-01 is followed here.
* Sovereign ``spec.provider`` takes the R-SOV-01 set (hetzner, aws, gcp, azure, oci, huawei); region
  codes come from the R-NAME-02 table of that provider, which has none for aws/gcp/azure yet.
* Application placement modes are the three of GLOSS/BPA (C-20); ``single-region`` takes at most one
  region (none means the Environment's first region), the other modes need >=2 (R-MR-02).
* EnvironmentPolicy: the Environment in the policy's name must be among ``appliesTo.environments`` and
  every listed Environment belongs to the same Organization (a policy file is edited per Org, R-CRD-02);
  ``soak.sourceEnvironment`` must be another Environment of that Organization (C-22).
* ``re-score-gate.severity`` is ``blocking`` (default) or ``warning`` (D-10).
* Durations are Go durations (``72h``, ``1h30m``); zero or negative windows and soaks are rejected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    ValidationError,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from catalyst_sim.model import naming
from catalyst_sim.model.base import (
    API_VERSION,
    CatalystError,
    CatalystObject,
    ObjectMeta,
    Problem,
    Strict,
    register_kind,
)

Loc = tuple[str | int, ...]


def _error(message: str) -> PydanticCustomError:
    # The message goes through a placeholder so braces in it ("{org}-{env_type}") stay literal.
    return PydanticCustomError("catalyst", "{message}", {"message": message})


def _keep(error_type: str, message: str) -> PydanticCustomError:
    """Re-raise an existing error with its type and final message unchanged."""
    return PydanticCustomError(error_type, "{message}", {"message": message})


def _fail(errors: Sequence[tuple[Loc, str]]) -> NoReturn:
    """Raise every error at its own location; pydantic prefixes the enclosing path."""
    raise ValidationError.from_exception_data(
        "Catalyst", [InitErrorDetails(type=_error(msg), loc=loc, input=None) for loc, msg in errors])


def _check(errors: Sequence[tuple[Loc, str]]) -> None:
    if errors:
        _fail(errors)


def _messages(problems: list[Problem]) -> str:
    return "; ".join(p.message for p in problems)


def _located(loc: Loc, problems: list[Problem]) -> list[tuple[Loc, str]]:
    return [(loc, p.message) for p in problems]


# --------------------------------------------------------------------------------------------------
# Go durations and cron

_GO_UNIT_NS: dict[str, int] = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
                               "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_GO_PART = r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)"
_GO_DURATION = re.compile(rf"^[+-]?({_GO_PART})+$")
_GO_MAX_NS = 2**63 - 1
_GO_EXAMPLES = "e.g. '72h', '2h', '1h30m' or '10m'"


def parse_go_duration(text: object, field: str = "duration") -> timedelta:
    """Parse a Go ``time.ParseDuration`` string; negative, malformed or sub-microsecond values raise."""
    if not isinstance(text, str):
        raise CatalystError.single(f"duration must be a Go duration string ({_GO_EXAMPLES}), got "
                                   f"{type(text).__name__} {text!r}", field=field)
    value = text.strip()
    if value in ("0", "+0", "-0"):
        return timedelta(0)
    if not _GO_DURATION.match(value):
        raise CatalystError.single(f"{text!r} is not a Go duration: use numbers with units h, m, s, ms, us "
                                   f"or ns ({_GO_EXAMPLES})", field=field)
    try:
        total = sum(Decimal(num) * _GO_UNIT_NS[unit] for num, unit in re.findall(_GO_PART, value))
    except InvalidOperation:  # pragma: no cover - the regex admits only decimal numbers
        raise CatalystError.single(f"{text!r} is not a Go duration ({_GO_EXAMPLES})", field=field) from None
    if value.startswith("-") and total:
        raise CatalystError.single(f"duration {text!r} must not be negative ({_GO_EXAMPLES})", field=field)
    if total > _GO_MAX_NS:
        raise CatalystError.single(f"duration {text!r} is out of range (Go durations end near 2562047h)",
                                   field=field)
    if total % 1000:
        raise CatalystError.single(f"duration {text!r} is finer than one microsecond, which is not supported",
                                   field=field)
    return timedelta(microseconds=int(total // 1000))


def format_go_duration(value: timedelta) -> str:
    """Compact Go-style text that :func:`parse_go_duration` reads back: ``72h``, ``1h30m``, ``1.5s``."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if micros < 0:
        raise ValueError(f"negative duration {value!r} has no Go duration form here")
    if micros == 0:
        return "0s"
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    if rest:
        if not out and rest < 1_000_000:
            out = f"{rest // 1000}ms" if rest % 1000 == 0 else f"{rest}us"
        else:
            seconds = Decimal(rest) / Decimal(1_000_000)
            out += f"{seconds.normalize():f}s"
    return out


def _duration_input(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise _error(f"duration {format_go_duration(-value)} must not be negative ({_GO_EXAMPLES})")
        return value
    try:
        return parse_go_duration(value)
    except CatalystError as err:
        raise _error(_messages(err.problems)) from None


GoDuration = Annotated[timedelta, BeforeValidator(_duration_input),
                       PlainSerializer(format_go_duration, return_type=str, when_used="json")]


def problems_for_cron(expr: object, field: str = "cron") -> list[Problem]:
    """A standard 5-field cron expression (minute hour day-of-month month day-of-week)."""
    if not isinstance(expr, str):
        return [Problem(message=f"cron must be a string, got {type(expr).__name__}", field=field)]
    fields = expr.split()
    if len(fields) != 5:
        return [Problem(message=f"cron {expr!r} has {len(fields)} field(s); it must have exactly 5 (minute "
                                "hour day-of-month month day-of-week), e.g. '0 14 * * 2,4'", field=field)]
    if not croniter.is_valid(expr):
        return [Problem(message=f"cron {expr!r} is not a valid 5-field cron expression, e.g. '0 14 * * 2,4' "
                                "(Tue/Thu 14:00)", field=field)]
    return []


def problems_for_timezone(name: object, field: str = "timezone") -> list[Problem]:
    if not isinstance(name, str):
        return [Problem(message="timezone must be an IANA name such as 'UTC' or 'Asia/Muscat'", field=field)]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return [Problem(message=f"unknown timezone {name!r}; use an IANA name such as 'UTC' or 'Asia/Muscat'",
                        field=field)]
    return []


def _positive(value: timedelta, what: str) -> timedelta:
    if value <= timedelta(0):
        raise _error(f"{what} must be greater than 0 ({_GO_EXAMPLES})")
    return value


def _unique(values: Sequence[Any], loc: Loc, what: str) -> list[tuple[Loc, str]]:
    seen: set[Any] = set()
    errors: list[tuple[Loc, str]] = []
    for i, value in enumerate(values):
        if value in seen:
            errors.append(((*loc, i), f"duplicate {what} {value!r}"))
        seen.add(value)
    return errors


# --------------------------------------------------------------------------------------------------
# Common base of the kinds in this module


class CatalystKind(CatalystObject):
    """A kind defined here: exact ``apiVersion`` (R-CRD-01), valid labels, a name rule per kind."""

    ACCEPTED_API_VERSIONS: ClassVar[tuple[str, ...]] = (API_VERSION,)
    NAMESPACE: ClassVar[str | None] = None  # the required namespace; None = cluster-scoped

    @field_validator("apiVersion")
    @classmethod
    def _check_api_version(cls, value: str) -> str:
        if value not in cls.ACCEPTED_API_VERSIONS:
            raise _error(f"apiVersion {value!r} is not supported for {cls.__name__}; expected "
                         f"{API_VERSION!r} (R-CRD-01)")
        return value

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, meta: ObjectMeta) -> ObjectMeta:
        errors = _located(("name",), cls.name_problems(meta.name))
        for key, value in meta.labels.items():
            errors += _located(("labels", key), naming.problems_for_labels({key: value}, ""))
        errors += cls._namespace_errors(meta)
        _check(errors)
        return meta

    @model_validator(mode="wrap")
    @classmethod
    def _report_cross_field_too(cls, data: Any, handler: Any) -> Any:
        """Report cross-field problems even when some field is invalid, so one pass shows everything.

        Cross-field checks normally run after field validation; when that fails they would be
        skipped, so :meth:`raw_cross_errors` re-checks them on the raw input and adds the ones not
        already reported.
        """
        try:
            return handler(data)
        except ValidationError as err:
            items = err.errors()
            reported = [tuple(i["loc"]) for i in items]
            extra = [(loc, msg) for loc, msg in cls.raw_cross_errors(data)
                     if not any(_overlaps(loc, done) for done in reported)]
            if not extra:
                raise
            details = [InitErrorDetails(type=_keep(i["type"], i["msg"]), loc=tuple(i["loc"]),
                                        input=i.get("input")) for i in items]
            details += [InitErrorDetails(type=_error(msg), loc=loc, input=None) for loc, msg in extra]
            raise ValidationError.from_exception_data(cls.__name__, details) from None

    @classmethod
    def raw_cross_errors(cls, data: Any) -> list[tuple[Loc, str]]:
        """Cross-field checks on raw input (a dict), for :meth:`_report_cross_field_too`."""
        return []

    @classmethod
    def name_problems(cls, name: str) -> list[Problem]:
        """The naming rule of this kind for ``metadata.name``; Kubernetes' own rule unless overridden."""
        return naming.problems_for_dns_subdomain(name, what=f"{cls.__name__} name")

    @classmethod
    def _namespace_errors(cls, meta: ObjectMeta) -> list[tuple[Loc, str]]:
        if cls.NAMESPACE is None and meta.namespace is not None:
            return [(("namespace",), f"{cls.__name__} is cluster-scoped; remove metadata.namespace")]
        if cls.NAMESPACE is not None and meta.namespace != cls.NAMESPACE:
            return [(("namespace",), f"{cls.__name__} must live in namespace {cls.NAMESPACE!r}, not "
                                     f"{meta.namespace!r}")]
        return []


def _overlaps(a: Loc, b: Loc) -> bool:
    """One location contains the other: an error there already explains a cross-field error here."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _raw(data: Any, key: str) -> Any:
    """``data[key]`` for raw dict input, else the attribute (input may be a model instance)."""
    return data.get(key) if isinstance(data, dict) else getattr(data, key, None)


def _default_namespace(data: Any, namespace: str | None) -> Any:
    """Fill ``metadata.namespace`` in raw input so it counts as set (and is written back to Git)."""
    if namespace is None or not isinstance(data, dict):
        return data
    meta = data.get("metadata")
    if isinstance(meta, dict) and meta.get("namespace") is None:
        return {**data, "metadata": {**meta, "namespace": namespace}}
    if isinstance(meta, ObjectMeta) and meta.namespace is None:
        return {**data, "metadata": meta.model_copy(update={"namespace": namespace})}
    return data


BuildingBlock = Literal["rtz", "dmz", "mgt"]
EnvType = Literal["prod", "stg", "uat", "dev", "poc"]
NonEmptyStr = Annotated[str, Field(min_length=1)]


# --------------------------------------------------------------------------------------------------
# Sovereign (R-SOV-01..04)

SovereignProvider = Literal["hetzner", "aws", "gcp", "azure", "oci", "huawei"]
KeycloakTopology = Literal["per-organization", "shared-sovereign"]


class SovereignRegion(Strict):
    region: str
    buildingBlocks: list[BuildingBlock] = Field(min_length=1)

    @field_validator("buildingBlocks")
    @classmethod
    def _mgt_and_rtz(cls, blocks: list[str]) -> list[str]:
        errors = _unique(blocks, (), "building block")
        missing = [bb for bb in ("mgt", "rtz") if bb not in blocks]
        if missing:
            errors.append(((), f"every Sovereign region needs building blocks mgt and rtz; missing "
                               f"{', '.join(missing)} (dmz is optional) (R-SOV-01)"))
        _check(errors)
        return blocks


class Autoscaler(Strict):
    min: int = Field(ge=0)
    max: int = Field(ge=1)


class Sizing(Strict):
    """Wizard sizing inputs (R-SOV-03); node sizes are provider instance types, never hardcoded here."""

    controlPlaneSize: NonEmptyStr
    haEnabled: bool = False
    workerSize: NonEmptyStr
    workerCount: int = Field(ge=0)
    autoscaler: Autoscaler | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Sizing:
        a = self.autoscaler
        if a is not None:
            errors: list[tuple[Loc, str]] = []
            if a.min > a.max:
                errors.append((("autoscaler", "min"), f"autoscaler min {a.min} is greater than max {a.max}"))
            elif not a.min <= self.workerCount <= a.max:
                errors.append((("workerCount",), f"workerCount {self.workerCount} must be within autoscaler "
                                                 f"min {a.min} and max {a.max} (R-SOV-03, R-SCALE-03)"))
            _check(errors)
        return self

    @property
    def controlPlaneNodes(self) -> int:
        """1 control-plane node, or 3 with HA (R-SOV-03)."""
        return 3 if self.haEnabled else 1


class UiDefaults(Strict):
    """Per-type UI defaults fixed at provisioning (R-SOV-04, R-SURF-06)."""

    consoleDepth: Literal["form", "advanced"]
    iacEditor: bool
    blueprintStudio: Literal["hidden", "by-role"]
    promotionFeatures: Literal["hidden-with-one-environment", "always"]
    environmentPolicyEditor: Literal["hidden", "by-role"]
    kubectl: Literal["off", "org-developer"]
    git: Literal["off", "on"]
    aiops: Literal["optional", "recommended"]

    @classmethod
    def for_topology(cls, topology: KeycloakTopology) -> UiDefaults:
        """The documented SME / corporate defaults; ``keycloakTopology`` is the only switch (R-CRD-03)."""
        if topology == "per-organization":
            return cls(consoleDepth="form", iacEditor=False, blueprintStudio="hidden",
                       promotionFeatures="hidden-with-one-environment", environmentPolicyEditor="hidden",
                       kubectl="off", git="off", aiops="optional")
        return cls(consoleDepth="advanced", iacEditor=True, blueprintStudio="by-role",
                   promotionFeatures="always", environmentPolicyEditor="by-role", kubectl="org-developer",
                   git="on", aiops="recommended")


class SovereignSpec(Strict):
    domain: str
    domainMode: Literal["pool", "byo-manual", "byo-api"]
    registrar: Literal["cloudflare", "namecheap", "godaddy", "ovh", "dynadot"] | None = None
    provider: SovereignProvider
    regions: list[SovereignRegion] = Field(min_length=1)
    keycloakTopology: KeycloakTopology
    federationIdp: NonEmptyStr | None = None
    tlsStrategy: Literal["letsencrypt", "corporate-ca"] = "letsencrypt"
    objectStorage: NonEmptyStr | None = None
    timezone: str = "UTC"
    sizing: Sizing | None = None
    uiDefaults: UiDefaults | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if problems := naming.problems_for_domain(value):
            raise _error(_messages(problems))
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if problems := problems_for_timezone(value):
            raise _error(_messages(problems))
        return value

    @model_validator(mode="after")
    def _cross(self) -> SovereignSpec:
        errors: list[tuple[Loc, str]] = []
        if self.domainMode == "byo-api" and self.registrar is None:
            errors.append((("registrar",), "domainMode byo-api needs a registrar (cloudflare, namecheap, "
                                           "godaddy, ovh or dynadot) to flip the NS records (R-SOV-01)"))
        if self.domainMode != "byo-api" and self.registrar is not None:
            errors.append((("registrar",), f"registrar is used only with domainMode byo-api, not "
                                           f"{self.domainMode!r}; remove it (R-SOV-01)"))
        code = self.provider_code
        for i, reg in enumerate(self.regions):
            errors += _located(("regions", i, "region"), naming.problems_for_region(code, reg.region, ""))
        errors += _unique([r.region for r in self.regions], ("regions",), "region")
        _check(errors)
        return self

    @property
    def provider_code(self) -> str:
        """The R-NAME-01 code (``hz``) for ``spec.provider`` (``hetzner``)."""
        return naming.PROVIDERS_BY_NAME[self.provider].code

    @property
    def effective_ui_defaults(self) -> UiDefaults:
        return self.uiDefaults or UiDefaults.for_topology(self.keycloakTopology)

    def region(self, code: str) -> SovereignRegion | None:
        return next((r for r in self.regions if r.region == code), None)

    def host_clusters(self, env_type: str = "prod") -> list[str]:
        """Every host cluster of this Sovereign for one env_type, region by region (R-NAME-08)."""
        return [naming.host_cluster_name(self.provider_code, r.region, bb, env_type)
                for r in self.regions for bb in r.buildingBlocks]

    def location_code(self, region: str, building_block: str = "mgt", env_type: str = "prod") -> str:
        return naming.location_code(self.provider_code, region, building_block, env_type)


@register_kind
class Sovereign(CatalystKind):
    kind: Literal["Sovereign"] = "Sovereign"
    spec: SovereignSpec

    @classmethod
    def name_problems(cls, name: str) -> list[Problem]:
        return naming.problems_for_sovereign_name(name)


# --------------------------------------------------------------------------------------------------
# Organization (R-ORG-01)


class OrganizationSpec(Strict):
    contact: NonEmptyStr
    plan: NonEmptyStr
    domain: str | None = None  # the Org's own domain on white-label Sovereigns (R-NAME-12)

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and (problems := naming.problems_for_domain(value)):
            raise _error(_messages(problems))
        return value


@register_kind
class Organization(CatalystKind):
    """Labels (e.g. ``tier: regulated``) live in ``metadata.labels``; SecretPolicy matches them."""

    kind: Literal["Organization"] = "Organization"
    spec: OrganizationSpec

    @classmethod
    def name_problems(cls, name: str) -> list[Problem]:
        return naming.problems_for_org_name(name)


# --------------------------------------------------------------------------------------------------
# Environment (R-ENV-01, R-NAME-07)


class PlacementRegion(Strict):
    region: str
    buildingBlocks: list[BuildingBlock] = Field(min_length=1)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if problems := naming.problems_for_any_region(value):
            raise _error(_messages(problems))
        return value

    @field_validator("buildingBlocks")
    @classmethod
    def _unique_blocks(cls, blocks: list[str]) -> list[str]:
        _check(_unique(blocks, (), "building block"))
        return blocks


class EnvironmentPlacement(Strict):
    """Regions x building blocks realizing the Environment; always explicit in the stored CR, so a
    later Add Region never moves an existing Environment (R-MR-04)."""

    regions: list[PlacementRegion] = Field(min_length=1)

    @classmethod
    def default_for(cls, sovereign: Sovereign) -> EnvironmentPlacement:
        """The single-region default (R-ENV-01 "small": the Sovereign's first region, rtz only)."""
        return cls(regions=[PlacementRegion(region=sovereign.spec.regions[0].region, buildingBlocks=["rtz"])])

    @field_validator("regions")
    @classmethod
    def _unique_regions(cls, regions: list[PlacementRegion]) -> list[PlacementRegion]:
        _check([((*loc, "region"), msg) for loc, msg in _unique([r.region for r in regions], (), "region")])
        return regions


Placement = EnvironmentPlacement  # short alias used by the control plane


class EnvironmentSpec(Strict):
    organization: str
    envType: EnvType
    placement: EnvironmentPlacement

    @field_validator("organization")
    @classmethod
    def _org(cls, value: str) -> str:
        if problems := naming.problems_for_org_name(value, ""):
            raise _error(_messages(problems))
        return value


class VclusterStatus(Strict):
    hostCluster: str
    vcluster: str
    ready: bool = False

    @field_validator("hostCluster")
    @classmethod
    def _host(cls, value: str) -> str:
        if problems := naming.problems_for_host_cluster_name(value, ""):
            raise _error(_messages(problems))
        return value


class EnvironmentStatus(Strict):
    """The realizing vclusters and readiness (R-ENV-01)."""

    ready: bool = False
    vclusters: list[VclusterStatus] = []
    message: str | None = None


@register_kind
class Environment(CatalystKind):
    kind: Literal["Environment"] = "Environment"
    spec: EnvironmentSpec
    status: EnvironmentStatus | None = None

    @classmethod
    def name_problems(cls, name: str) -> list[Problem]:
        return naming.problems_for_environment_name(name)

    @staticmethod
    def _name_errors(name: Any, organization: Any, env_type: Any) -> list[tuple[Loc, str]]:
        if (not all(isinstance(v, str) for v in (name, organization, env_type))
                or env_type not in naming.ENV_TYPES or not naming.is_valid_org_name(organization)):
            return []  # the field errors say it better
        expected = f"{organization}-{env_type}"
        if name == expected:
            return []
        return [(("metadata", "name"), f"Environment name {name!r} must be '{{organization}}-{{envType}}' "
                                       f"= {expected!r} (R-NAME-07)")]

    @classmethod
    def raw_cross_errors(cls, data: Any) -> list[tuple[Loc, str]]:
        meta, spec = _raw(data, "metadata"), _raw(data, "spec")
        return cls._name_errors(_raw(meta, "name"), _raw(spec, "organization"), _raw(spec, "envType"))

    @model_validator(mode="after")
    def _name_matches_spec(self) -> Environment:
        errors = self._name_errors(self.metadata.name, self.spec.organization, self.spec.envType)
        for i, vc in enumerate(self.status.vclusters if self.status else []):
            if vc.vcluster != self.spec.organization:
                errors.append((("status", "vclusters", i, "vcluster"),
                               f"vcluster {vc.vcluster!r} must be named after the Organization, "
                               f"{self.spec.organization!r} (R-NAME-09)"))
            if naming.parse_host_cluster_name(vc.hostCluster).env_type != self.spec.envType:
                errors.append((("status", "vclusters", i, "hostCluster"), f"host cluster {vc.hostCluster!r} "
                               f"has another env_type than {self.spec.envType!r} (D-03)"))
        _check(errors)
        return self

    @property
    def organization(self) -> str:
        return self.spec.organization

    @property
    def env_type(self) -> str:
        return self.spec.envType

    @property
    def branch(self) -> str:
        """The App-repo branch this Environment's Flux watches (R-NAME-14, D-14)."""
        return naming.branch_for_env_type(self.spec.envType)

    def host_clusters(self, provider: str) -> list[naming.HostCluster]:
        """Host clusters that realize this Environment on ``provider`` (code or full name), R-ENVC-01."""
        return [naming.host_cluster(provider, r.region, bb, self.spec.envType)
                for r in self.spec.placement.regions for bb in r.buildingBlocks]

    def vcluster_contexts(self, provider: str) -> list[str]:
        return [naming.vcluster_context(hc, self.spec.organization) for hc in self.host_clusters(provider)]


# --------------------------------------------------------------------------------------------------
# Application (R-APP-01, D-05, D-02)

PlacementMode = Literal["single-region", "active-active", "active-hotstandby"]


class BlueprintRef(Strict):
    name: str
    version: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if problems := naming.problems_for_blueprint_name(value, ""):
            raise _error(_messages(problems))
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if problems := naming.problems_for_semver(value, ""):
            raise _error(_messages(problems) + "; an Application pins one exact Blueprint version (R-APP-03)")
        return value


class ApplicationPlacement(Strict):
    mode: PlacementMode = "single-region"
    regions: list[str] = []

    @model_validator(mode="after")
    def _regions(self) -> ApplicationPlacement:
        errors: list[tuple[Loc, str]] = []
        for i, code in enumerate(self.regions):
            errors += _located(("regions", i), naming.problems_for_any_region(code, ""))
        errors += _unique(self.regions, ("regions",), "region")
        if self.mode == "single-region" and len(self.regions) > 1:
            errors.append((("regions",), f"mode single-region takes at most one region, got "
                                         f"{len(self.regions)}; use active-active or active-hotstandby for "
                                         "several (R-MR-02)"))
        if self.mode != "single-region" and len(self.regions) < 2:
            errors.append((("regions",), f"mode {self.mode} needs at least 2 regions, got "
                                         f"{len(self.regions)} (R-MR-02)"))
        _check(errors)
        return self


class HealthCheck(Strict):
    path: str = "/healthz"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or re.search(r"\s", value):
            raise _error(f"healthCheck path {value!r} must be an absolute URL path such as '/healthz' "
                         "(R-MR-03)")
        return value


_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


class ApplicationSpec(Strict):
    environment: str
    blueprint: BlueprintRef
    config: dict[str, Any] = {}
    overlay: Literal["small", "medium", "large"] = "small"
    placement: ApplicationPlacement = Field(default_factory=ApplicationPlacement)
    bindings: dict[str, str] = {}
    healthCheck: HealthCheck = Field(default_factory=HealthCheck)
    paused: bool = False

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str) -> str:
        if problems := naming.problems_for_environment_name(value, ""):
            raise _error(_messages(problems))
        return value

    @field_validator("bindings")
    @classmethod
    def _bindings(cls, bindings: dict[str, str]) -> dict[str, str]:
        errors: list[tuple[Loc, str]] = []
        for alias, app in bindings.items():
            if not _ALIAS.match(alias):
                errors.append(((alias,), f"binding alias {alias!r} must start with a letter and use letters, "
                                         "digits, '_' or '-' (at most 63)"))
            errors += _located((alias,), naming.problems_for_app_name(app, ""))
        _check(errors)
        return bindings


@register_kind
class Application(CatalystKind):
    """A Blueprint installed into an Environment; namespaced by that Environment (see module notes)."""

    kind: Literal["Application"] = "Application"
    spec: ApplicationSpec

    @classmethod
    def name_problems(cls, name: str) -> list[Problem]:
        return naming.problems_for_app_name(name)

    @classmethod
    def _namespace_errors(cls, meta: ObjectMeta) -> list[tuple[Loc, str]]:
        return []  # checked against spec.environment below

    @model_validator(mode="before")
    @classmethod
    def _fill_namespace(cls, data: Any) -> Any:
        spec = data.get("spec") if isinstance(data, dict) else None
        env = spec.get("environment") if isinstance(spec, dict) else getattr(spec, "environment", None)
        return _default_namespace(data, env if isinstance(env, str) else None)

    @model_validator(mode="after")
    def _cross(self) -> Application:
        errors: list[tuple[Loc, str]] = []
        if self.metadata.namespace != self.spec.environment:
            errors.append((("metadata", "namespace"),
                           f"an Application lives in the namespace of its Environment: expected "
                           f"{self.spec.environment!r}, got {self.metadata.namespace!r} (D-05)"))
        for alias, target in self.spec.bindings.items():
            if target == self.metadata.name:
                errors.append((("spec", "bindings", alias),
                               f"Application {target!r} cannot be bound to itself"))
        _check(errors)
        return self

    def ref(self) -> str:
        return f"Application/{self.spec.environment}/{self.metadata.name}"

    @property
    def environment(self) -> naming.EnvironmentName:
        return naming.parse_environment_name(self.spec.environment, "spec.environment")

    @property
    def organization(self) -> str:
        return self.environment.organization

    @property
    def repo(self) -> str:
        """``{org}/{app}`` (R-APP-02)."""
        return naming.app_repo(self.organization, self.metadata.name)

    @property
    def branch(self) -> str:
        return naming.branch_for_env_type(self.environment.env_type)


# --------------------------------------------------------------------------------------------------
# EnvironmentPolicy (R-EP-01, R-NAME-15)


class AppliesTo(Strict):
    environments: list[str] = Field(min_length=1)

    @field_validator("environments")
    @classmethod
    def _environments(cls, values: list[str]) -> list[str]:
        errors: list[tuple[Loc, str]] = []
        for i, env in enumerate(values):
            errors += _located((i,), naming.problems_for_environment_name(env, ""))
        errors += _unique(values, (), "environment")
        _check(errors)
        return values


class PrRequiredRule(Strict):
    """At least ``minApprovals`` approvals from members of the ``approvers`` teams (R-PROMO-03)."""

    kind: Literal["pr-required"]
    approvers: list[str] = Field(min_length=1)
    minApprovals: int = Field(ge=1)

    @field_validator("approvers")
    @classmethod
    def _teams(cls, teams: list[str]) -> list[str]:
        errors: list[tuple[Loc, str]] = []
        for i, team in enumerate(teams):
            errors += _located((i,), naming.problems_for_dns_label(team, "", what="approver team"))
        errors += _unique(teams, (), "approver team")
        _check(errors)
        return teams


class ReScoreGateRule(Strict):
    """RE score >= ``minScore``; ``blocking`` blocks the merge, ``warning`` only records (D-10)."""

    kind: Literal["re-score-gate"]
    minScore: int = Field(ge=0, le=100)
    severity: Literal["blocking", "warning"] = "blocking"

    @property
    def blocks(self) -> bool:
        return self.severity == "blocking"


class SoakRule(Strict):
    """The candidate commit must have been Ready in ``sourceEnvironment`` for ``duration`` (D-11)."""

    kind: Literal["soak"]
    sourceEnvironment: str
    duration: GoDuration

    @field_validator("sourceEnvironment")
    @classmethod
    def _source(cls, value: str) -> str:
        if problems := naming.problems_for_environment_name(value, ""):
            raise _error(_messages(problems))
        return value

    @field_validator("duration")
    @classmethod
    def _positive_duration(cls, value: timedelta) -> timedelta:
        return _positive(value, "soak duration")


class ChangeWindowRule(Strict):
    """Merges only inside [fire, fire + duration) of the cron, in the Sovereign's timezone (D-12)."""

    kind: Literal["change-window"]
    cron: str
    duration: GoDuration

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if problems := problems_for_cron(value, ""):
            raise _error(_messages(problems))
        return value

    @field_validator("duration")
    @classmethod
    def _positive_duration(cls, value: timedelta) -> timedelta:
        return _positive(value, "change-window duration")

    def open_window(self, at: datetime, timezone: str = "UTC") -> tuple[datetime, datetime] | None:
        """The window containing ``at`` (start inclusive, end exclusive), or ``None`` if closed.

        The latest fire time at or before ``at`` decides: an earlier window ends no later.
        """
        if at.tzinfo is None:
            raise ValueError("change-window checks need an aware datetime")
        local = at.astimezone(ZoneInfo(timezone))
        start = croniter(self.cron, local + timedelta(microseconds=1)).get_prev(datetime)
        end = start + self.duration
        return (start, end) if start <= local < end else None

    def is_open(self, at: datetime, timezone: str = "UTC") -> bool:
        return self.open_window(at, timezone) is not None


POLICY_RULE_TYPES: dict[str, type[Strict]] = {
    "pr-required": PrRequiredRule,
    "re-score-gate": ReScoreGateRule,
    "soak": SoakRule,
    "change-window": ChangeWindowRule,
}


def _dispatch_rule(value: Any, handler: Any) -> Any:
    """Pick the rule model by ``kind`` so errors read ``spec.rules[i].field`` (no union tag in the path)."""
    if isinstance(value, tuple(POLICY_RULE_TYPES.values())):
        return value
    if not isinstance(value, dict):
        raise _error(f"a policy rule must be a mapping with a kind, got {type(value).__name__}")
    kind = value.get("kind")
    known = ", ".join(POLICY_RULE_TYPES)
    if kind is None:
        _fail([(("kind",), f"missing rule kind; expected one of {known} (R-EP-01)")])
    if kind not in POLICY_RULE_TYPES:
        hint = " (recording-required is out of scope)" if kind == "recording-required" else ""
        _fail([(("kind",), f"unknown rule kind {kind!r}; expected one of {known}{hint} (R-EP-01)")])
    return POLICY_RULE_TYPES[kind].model_validate(value)


PolicyRule = Annotated[PrRequiredRule | ReScoreGateRule | SoakRule | ChangeWindowRule,
                       WrapValidator(_dispatch_rule)]


class EnvironmentPolicySpec(Strict):
    appliesTo: AppliesTo
    rules: list[PolicyRule] = []


@register_kind
class EnvironmentPolicy(CatalystKind):
    """Gates on merges into the destination Environment's branch (R-EP-01, R-EP-02)."""

    kind: Literal["EnvironmentPolicy"] = "EnvironmentPolicy"
    NAMESPACE: ClassVar[str | None] = naming.POLICY_NAMESPACE
    spec: EnvironmentPolicySpec

    @classmethod
    def name_problems(cls, name: str) -> list[Problem]:
        return naming.problems_for_policy_name(name)

    @model_validator(mode="before")
    @classmethod
    def _fill_namespace(cls, data: Any) -> Any:
        return _default_namespace(data, naming.POLICY_NAMESPACE)

    @staticmethod
    def _applies_errors(name: Any, envs: Any) -> list[tuple[Loc, str]]:
        if (not isinstance(name, str) or not isinstance(envs, list) or not envs
                or naming.problems_for_policy_name(name)):
            return []
        named = naming.parse_policy_name(name)
        if named.name in envs:
            return []
        return [(("spec", "appliesTo", "environments"),
                 f"policy {name!r} is named after Environment {named.name!r}, which must be listed in "
                 "appliesTo.environments (R-NAME-15)")]

    @classmethod
    def raw_cross_errors(cls, data: Any) -> list[tuple[Loc, str]]:
        name = _raw(_raw(data, "metadata"), "name")
        return cls._applies_errors(name, _raw(_raw(_raw(data, "spec"), "appliesTo"), "environments"))

    @model_validator(mode="after")
    def _cross(self) -> EnvironmentPolicy:
        named = naming.parse_policy_name(self.metadata.name)
        envs = self.spec.appliesTo.environments
        errors = self._applies_errors(self.metadata.name, envs)
        for i, env in enumerate(envs):
            if naming.parse_environment_name(env).organization != named.organization:
                errors.append((("spec", "appliesTo", "environments", i),
                               f"Environment {env!r} belongs to another Organization than this policy's "
                               f"{named.organization!r}"))
        for i, rule in enumerate(self.spec.rules):
            if isinstance(rule, SoakRule):
                src = naming.parse_environment_name(rule.sourceEnvironment)
                loc: Loc = ("spec", "rules", i, "sourceEnvironment")
                if rule.sourceEnvironment in envs:
                    errors.append((loc, f"soak source {rule.sourceEnvironment!r} is a destination of this "
                                        "policy; soak in a lower Environment such as 'acme-stg' "
                                        "(R-PROMO-05)"))
                elif src.organization != named.organization:
                    errors.append((loc, f"soak source {rule.sourceEnvironment!r} belongs to another "
                                        f"Organization than {named.organization!r}"))
        _check(errors)
        return self

    @property
    def environment(self) -> naming.EnvironmentName:
        """The destination Environment the policy is named after."""
        return naming.parse_policy_name(self.metadata.name)

    @property
    def file_path(self) -> str:
        """Where the policy lives: ``system/catalyst-config/policies/<name>.yaml`` (R-NAME-15)."""
        env = self.environment
        return naming.policy_file_path(env.organization, env.env_type)

    def rules_of(self, kind: type[Strict]) -> list[Any]:
        return [r for r in self.spec.rules if isinstance(r, kind)]


# --------------------------------------------------------------------------------------------------
# Cross-object checks the control plane runs before accepting a change


def problems_for_policy_file(policy: EnvironmentPolicy, path: str, *, source: str = "") -> list[Problem]:
    """A policy stored at ``.../policies/<file>.yaml`` must be named ``<file>`` (R-NAME-15)."""
    stem = path.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if stem.endswith((".yaml", ".yml")) else stem
    if stem != policy.metadata.name:
        return [Problem(message=f"EnvironmentPolicy {policy.metadata.name!r} is stored in {path!r}; the "
                                f"file must be named '{policy.metadata.name}.yaml' (R-NAME-15)",
                        field="metadata.name", object=policy.ref(), source=source)]
    return []


def problems_for_environment_placement(environment: Environment, sovereign: Sovereign) -> list[Problem]:
    """Every placed (region, building block) must exist on the Sovereign (R-ENV-01, R-ENVC-01)."""
    problems: list[Problem] = []
    for i, placed in enumerate(environment.spec.placement.regions):
        where = f"spec.placement.regions[{i}]"
        have = sovereign.spec.region(placed.region)
        if have is None:
            known = ", ".join(r.region for r in sovereign.spec.regions)
            problems.append(Problem(message=f"region {placed.region!r} is not a region of Sovereign "
                                            f"{sovereign.name!r} ({known})", field=f"{where}.region",
                                    object=environment.ref()))
            continue
        for j, bb in enumerate(placed.buildingBlocks):
            if bb not in have.buildingBlocks:
                problems.append(Problem(message=f"building block {bb!r} does not exist in region "
                                                f"{placed.region!r} of Sovereign {sovereign.name!r}",
                                        field=f"{where}.buildingBlocks[{j}]", object=environment.ref()))
    return problems


def problems_for_application_placement(application: Application, environment: Environment) -> list[Problem]:
    """An Application can only be placed in regions its Environment spans (R-MR-04)."""
    problems: list[Problem] = []
    if application.spec.environment != environment.name:
        problems.append(Problem(message=f"Application is in {application.spec.environment!r}, not "
                                        f"{environment.name!r}", field="spec.environment",
                                object=application.ref()))
    spans = [r.region for r in environment.spec.placement.regions]
    for i, code in enumerate(application.spec.placement.regions):
        if code not in spans:
            problems.append(Problem(message=f"region {code!r} is not part of Environment "
                                            f"{environment.name!r} ({', '.join(spans)}); add the region to "
                                            "the Environment first",
                                    field=f"spec.placement.regions[{i}]", object=application.ref()))
    return problems


_IMMUTABLE: dict[str, tuple[tuple[str, ...], ...]] = {
    "Sovereign": (("spec", "keycloakTopology"), ("spec", "provider")),
    "Environment": (("spec", "organization"), ("spec", "envType")),
    "Application": (("spec", "environment"),),
}


def problems_for_update(old: CatalystObject, new: CatalystObject) -> list[Problem]:
    """Fields that may not change after creation: names (R-NAME-07), keycloakTopology (R-SOV-02) ..."""
    problems: list[Problem] = []
    if old.kind != new.kind or old.metadata.name != new.metadata.name:
        problems.append(Problem(message=f"{old.ref()} cannot become {new.ref()}: names are immutable; create "
                                        "a new object instead (R-NAME-07)", field="metadata.name",
                                object=old.ref()))
        return problems
    for path in _IMMUTABLE.get(old.kind, ()):
        before: Any = old
        after: Any = new
        for part in path:
            before, after = getattr(before, part), getattr(after, part)
        if before != after:
            problems.append(Problem(message=f"{'.'.join(path)} is immutable after creation ({before!r} -> "
                                            f"{after!r})", field=".".join(path), object=old.ref()))
    return problems
