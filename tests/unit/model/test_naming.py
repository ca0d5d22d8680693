"""Naming rules R-NAME-01..24 (catalyst_sim.model.naming)."""

from __future__ import annotations

import pytest

from catalyst_sim.model import naming as n
from catalyst_sim.model.base import CatalystError

# ------------------------------------------------------------------------------------------------
# R-NAME-01..04 dimension tables


@pytest.mark.parametrize(
    ("code", "char", "name"),
    [
        ("hz", "h", "hetzner"),
        ("hw", "w", "huawei"),
        ("oci", "o", "oci"),
        ("aws", "a", "aws"),
        ("gcp", "g", "gcp"),
        ("az", "z", "azure"),
        ("ct", "c", "contabo"),
    ],
)
def test_provider_codes(code: str, char: str, name: str) -> None:
    assert n.PROVIDERS[code].char == char
    assert n.provider(name).code == code
    assert n.provider(code).name == name


def test_provider_table_is_exactly_the_documented_set() -> None:
    assert set(n.PROVIDER_CODES) == {"hz", "hw", "oci", "aws", "gcp", "az", "ct"}
    with pytest.raises(CatalystError) as err:
        n.provider("do")
    assert err.value.problems[0].field == "provider"
    assert "hz" in str(err.value)


@pytest.mark.parametrize(
    ("prov", "region", "char"),
    [
        ("hz", "fsn", "f"),
        ("hz", "nbg", "n"),
        ("hz", "hel", "l"),
        ("hz", "ash", "a"),
        ("hz", "hil", "i"),
        ("hz", "sin", "s"),
        ("hw", "apse", "p"),
        ("hw", "cnn", "c"),
        ("hw", "las", "q"),
        ("hw", "mer", "r"),
        ("oci", "dxb", "x"),
        ("oci", "fra", "r"),
        ("oci", "sg", "g"),
        ("oci", "iad", "d"),
        ("oci", "syd", "y"),
        ("ct", "eu", "e"),
    ],
)
def test_region_codes(prov: str, region: str, char: str) -> None:
    assert n.region(prov, region).char == char
    assert n.find_region(region) == n.REGIONS[prov][region]


def test_shipped_region_table_has_no_collisions() -> None:
    assert n.problems_for_region_table() == []
    for prov, table in n.REGIONS.items():
        assert all(r.char != n.PROVIDERS[prov].char for r in table.values())


def test_region_table_check_catches_each_collision_kind() -> None:
    bad = {
        "hz": {
            "hbg": n.Region("hz", "hbg", "h", "x"),  # reuses the provider's char
            "fsn": n.Region("hz", "fsn", "f", "x"),
            "fra": n.Region("hz", "fra", "f", "x"),
        },  # sibling char reused
        "oci": {"fra": n.Region("oci", "fra", "r", "x")},  # code reused across providers
    }
    messages = [p.message for p in n.problems_for_region_table(regions=bad)]
    assert len(messages) == 3
    assert any("provider's 1-char code 'h'" in m for m in messages)
    assert any("reuses 1-char code 'f'" in m for m in messages)
    assert any("already used by provider 'hz'" in m for m in messages)


@pytest.mark.parametrize(
    ("prov", "region", "fragment"),
    [
        ("oci", "fsn", "unknown region 'fsn' for provider 'oci'"),
        ("hz", "fra", "expected one of fsn, nbg, hel, ash, hil, sin"),
        ("aws", "us-east-1", "has no region codes yet"),
        ("xx", "fsn", "unknown provider code 'xx'"),
    ],
)
def test_unknown_regions_are_rejected(prov: str, region: str, fragment: str) -> None:
    problems = n.problems_for_region(prov, region, "spec.regions[0].region")
    assert len(problems) == 1
    assert problems[0].field == "spec.regions[0].region"
    assert fragment in problems[0].message


def test_building_blocks_and_env_types() -> None:
    assert n.BUILDING_BLOCKS == {"rtz": "r", "dmz": "d", "mgt": "m"}
    assert n.ENV_TYPES == {"prod": "p", "stg": "s", "uat": "u", "dev": "d", "poc": "c"}
    assert n.problems_for_building_block("edge")[0].field == "buildingBlock"
    dr = n.problems_for_env_type("dr", "spec.envType")
    assert dr[0].field == "spec.envType" and "Placement" in dr[0].message
    assert n.validate_env_type("uat") == "uat"


# ------------------------------------------------------------------------------------------------
# R-NAME-05 Organization (D-01), R-NAME-06 Sovereign

ACCEPTED_ORGS = [
    "acme",
    "bankdhofar",
    "muscatpharmacy",
    "omantel-internal",
    "digital-channels",
    "abc",
    "a" * 32,
    "a1-b2",
]


@pytest.mark.parametrize("name", ACCEPTED_ORGS)
def test_org_names_accepted(name: str) -> None:
    assert n.problems_for_org_name(name) == []
    assert n.is_valid_org_name(name)
    assert n.validate_org_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("ab", "2 characters"),
        ("Acme", "did you mean 'acme'"),
        ("1acme", "must start with a lowercase letter"),
        ("kube-x", "starting with 'kube-' are reserved"),
        ("system", "reserved system name"),
        ("prod", "equals an env_type code"),
        ("a" * 33, "33 characters"),
        ("acme-", "must not end with '-'"),
        ("flux", "reserved"),
        ("crossplane", "reserved"),
        ("catalyst", "reserved"),
        ("gitea", "reserved"),
        ("fsn", "Hetzner region code"),
        ("rtz", "building-block code"),
        ("oci", "provider code"),
        ("apse", "Huawei Cloud region code"),
        ("dev", "env_type code"),
        ("aws", "provider code"),
        ("catalog", "Gitea Org"),
        ("catalog-sovereign", "Gitea Org"),
        ("catalyst-projector", "'catalyst-'"),
        ("acme_x", "'_'"),
        ("", "0 characters"),
        ("ac me", "' '"),
    ],
)
def test_org_names_rejected(name: str, fragment: str) -> None:
    problems = n.problems_for_org_name(name)
    assert len(problems) == 1
    assert problems[0].field == "metadata.name"
    assert fragment in problems[0].message
    assert "R-NAME-05" in problems[0].message
    assert not n.is_valid_org_name(name)


def test_validate_org_name_raises_with_field_and_suggestion() -> None:
    with pytest.raises(CatalystError) as err:
        n.validate_org_name("prod", field="spec.organization")
    problem = err.value.problems[0]
    assert problem.field == "spec.organization"
    assert "'prod-org'" in problem.message  # says what would be valid


def test_org_name_not_a_string() -> None:
    assert "must be a string" in n.problems_for_org_name(42)[0].message


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("openova", True),
        ("omantel", True),
        ("bankdhofar", True),
        ("system", True),
        ("ab", False),
        ("Omantel", False),
        ("omantel-", False),
        ("omantel.omani.works", False),
    ],
)
def test_sovereign_names(name: str, ok: bool) -> None:
    assert n.is_valid_sovereign_name(name) is ok
    if not ok:
        assert "R-NAME-06" in n.problems_for_sovereign_name(name)[0].message


# ------------------------------------------------------------------------------------------------
# R-NAME-07 Environment names


def test_environment_name_build_and_parse() -> None:
    assert n.environment_name("acme", "prod") == "acme-prod"
    assert n.parse_environment_name("bankdhofar-uat") == ("bankdhofar", "uat")
    parsed = n.parse_environment_name("omantel-internal-prod")
    assert parsed.organization == "omantel-internal" and parsed.env_type == "prod"
    assert parsed.name == str(parsed) == "omantel-internal-prod"


def test_environment_name_at_the_length_limit() -> None:
    name = "a" * 32 + "-prod"
    assert len(name) == n.MAX_ENVIRONMENT_NAME_LENGTH
    assert n.is_valid_environment_name(name)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("acme", "'{org}-{env_type}'"),
        ("acme-dr", "'{org}-{env_type}'"),
        ("acme-production", "'{org}-{env_type}'"),
        ("system-prod", "reserved"),
        ("Acme-prod", "invalid organization part"),
        ("a" * 33 + "-prod", "at most 37"),
        ("fraud-lab-dev-x", "'{org}-{env_type}'"),
    ],
)
def test_environment_names_rejected(name: str, fragment: str) -> None:
    problems = n.problems_for_environment_name(name, "spec.environment")
    assert problems and problems[0].field == "spec.environment"
    assert fragment in problems[0].message


def test_environment_name_builder_rejects_bad_parts() -> None:
    with pytest.raises(CatalystError) as err:
        n.environment_name("ab", "dr")
    assert {p.field for p in err.value.problems} == {"organization", "envType"}


# ------------------------------------------------------------------------------------------------
# R-NAME-08..10 host clusters, vclusters, namespaces


def test_host_cluster_name_build_and_parse() -> None:
    assert n.host_cluster_name("hz", "fsn", "rtz", "prod") == "hz-fsn-rtz-prod"
    assert n.host_cluster_name("hetzner", "nbg", "mgt", "prod") == "hz-nbg-mgt-prod"
    hc = n.parse_host_cluster_name("oci-dxb-rtz-prod")
    assert hc == ("oci", "dxb", "rtz", "prod")
    assert hc.location_code == "oxrp"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("hz-fsn-primary-prod", "failover-role word 'primary'"),
        ("hz-fsn-rtz-dr", "failover-role word 'dr'"),
        ("hz-fsn-rtz-secondary", "failover-role word"),
        ("oci-fsn-rtz-prod", "unknown region 'fsn' for provider 'oci'"),
        ("hz-fsn-rtz", "'{prov}-{reg}-{bb}-{env_type}'"),
        ("hz-fsn-rtz-prod-acme", "'{prov}-{reg}-{bb}-{env_type}'"),
        ("hz-fsn-edge-prod", "unknown building block 'edge'"),
        ("hetzner-fsn-rtz-prod", "unknown provider code 'hetzner'"),
    ],
)
def test_host_cluster_names_rejected(name: str, fragment: str) -> None:
    problems = n.problems_for_host_cluster_name(name)
    assert len(problems) == 1 and fragment in problems[0].message
    assert "R-NAME-08" in problems[0].message or "R-NAME-0" in problems[0].message
    assert not n.is_valid_host_cluster_name(name)


def test_vcluster_naming() -> None:
    assert n.vcluster_name("acme") == "acme"
    assert n.vcluster_host_namespace("acme") == "acme"
    assert n.vcluster_context("hz-fsn-rtz-prod", "acme") == "hz-fsn-rtz-prod-acme"
    cluster, org = n.parse_vcluster_context("hz-hel-rtz-prod-omantel-internal")
    assert cluster.name == "hz-hel-rtz-prod" and org == "omantel-internal"
    with pytest.raises(CatalystError):
        n.parse_vcluster_context("hz-fsn-rtz-prod")
    with pytest.raises(CatalystError):
        n.vcluster_context("hz-fsn-rtz-prod", "system")


def test_namespaces() -> None:
    assert n.control_plane_namespace("projector") == "catalyst-projector"
    assert n.app_namespace("marketing-site") == "marketing-site"
    with pytest.raises(CatalystError):
        n.app_namespace("shared-blueprints")
    with pytest.raises(CatalystError):
        n.control_plane_namespace("Bad_Component")


# ------------------------------------------------------------------------------------------------
# R-NAME-11 location codes

GOLDEN_LOCATION_CODES = {
    "hfrp": ("hz", "fsn", "rtz", "prod"),
    "hfrd": ("hz", "fsn", "rtz", "dev"),
    "hfdp": ("hz", "fsn", "dmz", "prod"),
    "hfmp": ("hz", "fsn", "mgt", "prod"),
    "hlrp": ("hz", "hel", "rtz", "prod"),
    "hldp": ("hz", "hel", "dmz", "prod"),
    "hnrp": ("hz", "nbg", "rtz", "prod"),
    "hnmp": ("hz", "nbg", "mgt", "prod"),
    "hnmd": ("hz", "nbg", "mgt", "dev"),
    "harp": ("hz", "ash", "rtz", "prod"),
    "hsrp": ("hz", "sin", "rtz", "prod"),
    "wprp": ("hw", "apse", "rtz", "prod"),
    "oxrp": ("oci", "dxb", "rtz", "prod"),
    "orrp": ("oci", "fra", "rtz", "prod"),
    "cemp": ("ct", "eu", "mgt", "prod"),
}


@pytest.mark.parametrize(("code", "dims"), GOLDEN_LOCATION_CODES.items())
def test_location_code_golden_vectors(code: str, dims: tuple[str, str, str, str]) -> None:
    assert n.LOCATION_CODE_PATTERN.match(code)
    assert n.location_code(*dims) == code
    assert tuple(n.parse_location_code(code)) == dims
    assert n.host_cluster(*dims).location_code == code


def test_every_table_combination_round_trips() -> None:
    seen: dict[str, str] = {}
    for prov, table in n.REGIONS.items():
        for reg in table:
            for bb in n.BUILDING_BLOCKS:
                for env_type in n.ENV_TYPES:
                    code = n.location_code(prov, reg, bb, env_type)
                    assert code not in seen, f"{code} is ambiguous: {seen.get(code)}"
                    seen[code] = n.host_cluster_name(prov, reg, bb, env_type)
                    assert n.parse_location_code(code).name == seen[code]


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("hfrx", "must be 4 characters"),
        ("HFRP", "must be 4 characters"),
        ("hfr", "must be 4 characters"),
        ("xfrp", "must be 4 characters"),
        ("hqrp", "'q' is not a region of provider 'hz'"),
        ("afrp", "none yet"),
    ],
)
def test_location_codes_rejected(code: str, fragment: str) -> None:
    problems = n.problems_for_location_code(code)
    assert len(problems) == 1 and fragment in problems[0].message
    assert problems[0].field == "locationCode"


# ------------------------------------------------------------------------------------------------
# R-NAME-12..14 DNS, Gitea and branches (D-14)


def test_dns_names() -> None:
    assert n.control_plane_fqdn("console", "hfmp", "openova.io") == "console.hfmp.openova.io"
    assert (
        n.app_fqdn("marketing-site", "acme-prod", "omantel.openova.io")
        == "marketing-site.acme-prod.omantel.openova.io"
    )
    assert n.app_fqdn("blog", "acme-prod", "acme.com") == "blog.acme-prod.acme.com"
    with pytest.raises(CatalystError) as err:
        n.control_plane_fqdn("console", "hfmx", "openova.io")
    assert err.value.problems[0].field == "locationCode"


@pytest.mark.parametrize("domain", ["localhost", "Openova.io", "-a.io", "a..io", "a.b-", "x.123"])
def test_bad_domains(domain: str) -> None:
    assert n.problems_for_domain(domain)[0].field == "domain"


def test_gitea_layout() -> None:
    assert (n.GITEA_ORG_CATALOG, n.GITEA_ORG_CATALOG_SOVEREIGN, n.GITEA_ORG_SYSTEM) == (
        "catalog",
        "catalog-sovereign",
        "system",
    )
    assert n.SYSTEM_REPOS == ("catalyst-config", "policy-bundle", "runbooks")
    assert n.app_repo("acme", "marketing-site") == "acme/marketing-site"
    assert n.shared_blueprints_repo("acme") == "acme/shared-blueprints"
    assert n.system_repo("catalyst-config") == "system/catalyst-config"
    assert (
        n.app_repo_url("hfmp", "acme-telecom.openova.io", "acme-pharmacy", "store-frontend")
        == "gitea.hfmp.acme-telecom.openova.io/acme-pharmacy/store-frontend"
    )
    with pytest.raises(CatalystError):
        n.system_repo("secrets")
    with pytest.raises(CatalystError):
        n.app_repo("acme", "shared-blueprints")


@pytest.mark.parametrize(
    ("env_type", "branch"),
    [("dev", "develop"), ("stg", "staging"), ("prod", "main"), ("uat", "uat"), ("poc", "poc")],
)
def test_branch_mapping(env_type: str, branch: str) -> None:
    assert n.branch_for_env_type(env_type) == branch
    assert n.env_type_for_branch(branch) == env_type


def test_unknown_branch() -> None:
    with pytest.raises(CatalystError) as err:
        n.env_type_for_branch("feature/x")
    assert err.value.problems[0].field == "branch"


@pytest.mark.parametrize(
    ("source", "env_types", "target"),
    [
        ("develop", None, "staging"),
        ("staging", None, "uat"),
        ("uat", None, "main"),
        ("main", None, None),
        ("poc", None, None),
        ("staging", ["dev", "stg", "prod"], "main"),
        ("develop", ["dev", "prod"], "main"),
        ("develop", ["dev"], None),
    ],
)
def test_promotion_order(source: str, env_types: list[str] | None, target: str | None) -> None:
    assert n.promotion_target(source, env_types) == target


def test_promotion_chain() -> None:
    assert n.promotion_chain() == ("develop", "staging", "uat", "main")
    assert n.promotion_chain(["prod", "poc", "dev"]) == ("develop", "main")


# ------------------------------------------------------------------------------------------------
# R-NAME-15..19 policy, NATS, KV, OpenBao, SPIFFE


def test_policy_naming() -> None:
    assert n.policy_name("acme", "prod") == "acme-prod-policy"
    assert n.policy_repo_path("acme", "prod") == "policies/acme-prod-policy.yaml"
    assert n.policy_file_path("acme", "prod") == "system/catalyst-config/policies/acme-prod-policy.yaml"
    assert n.POLICY_NAMESPACE == "catalyst-system"
    assert n.parse_policy_name("omantel-internal-stg-policy") == ("omantel-internal", "stg")
    for bad in ("acme-prod", "acme-xyz-policy", "policy"):
        assert n.problems_for_policy_name(bad)[0].field == "metadata.name"


@pytest.mark.parametrize(
    ("raw", "token"),
    [("deployments.apps", "deployments%2Eapps"), ("api", "api"), ("50%", "50%25"), ("a.b.c", "a%2Eb%2Ec")],
)
def test_subject_token_encoding(raw: str, token: str) -> None:
    assert n.encode_subject_token(raw) == token
    assert n.decode_subject_token(token) == raw
    assert "." not in token


@pytest.mark.parametrize("raw", ["a*", "a>", "a b", ""])
def test_subject_tokens_never_become_wildcards(raw: str) -> None:
    with pytest.raises(CatalystError):
        n.encode_subject_token(raw)


def test_environment_subjects() -> None:
    assert n.nats_account("acme") == "acme"
    assert n.env_subject_prefix("acme-prod") == "ws.acme-prod"
    assert n.env_subject_filter("acme-prod") == "ws.acme-prod.>"
    subject = n.k8s_subject("acme-prod", "deployments.apps", "marketing-site", "api.v2")
    assert subject == "ws.acme-prod.k8s.deployments%2Eapps.marketing-site.api%2Ev2"
    assert n.parse_env_subject(subject) == (
        "acme-prod",
        "k8s",
        ("deployments.apps", "marketing-site", "api.v2"),
    )
    cluster_scoped = n.k8s_subject("acme-prod", "namespaces", None, "blog")
    assert cluster_scoped == "ws.acme-prod.k8s.namespaces._.blog"
    assert n.parse_env_subject(cluster_scoped).tokens == ("namespaces", None, "blog")
    assert n.flux_subject("acme-prod", "marketing-site") == "ws.acme-prod.flux.marketing-site"
    assert n.git_subject("acme-prod", "0123abc") == "ws.acme-prod.git.0123abc"
    assert n.crossplane_subject("acme-prod", "bucket.s3") == "ws.acme-prod.crossplane.bucket%2Es3"
    assert n.cutover_subject("gitea-mirror") == "catalyst.cutover.gitea-mirror"
    assert n.CUTOVER_SUBJECT_FILTER == "catalyst.cutover.*"


@pytest.mark.parametrize(
    "subject",
    [
        "ws.acme-prod.k8s.a.b",
        "ws.acme-prod.unknown.x",
        "xs.acme-prod.flux.x",
        "ws.acme.flux.x",
        "ws.acme-prod",
    ],
)
def test_bad_environment_subjects(subject: str) -> None:
    with pytest.raises(CatalystError):
        n.parse_env_subject(subject)


def test_git_subject_needs_a_commit_hash() -> None:
    with pytest.raises(CatalystError):
        n.git_subject("acme-prod", "main")


def test_kv_naming() -> None:
    assert n.kv_bucket("acme-prod") == "ws-acme-prod-state"
    assert n.kv_key("Deployment", "api.v2") == "Deployment/api.v2"  # D-04: raw name in KV
    assert n.parse_kv_key("Application/marketing-site") == ("Application", "marketing-site")
    for kind, name in (("Deployment", "a/b"), ("", "x"), ("Deployment", "a b")):
        with pytest.raises(CatalystError):
            n.kv_key(kind, name)
    with pytest.raises(CatalystError):
        n.kv_bucket("acme")


def test_openbao_paths() -> None:
    assert n.openbao_env_root("acme", "prod") == "org/acme/env/prod/"
    assert n.openbao_path("acme", "prod", "marketing-site", "db") == "org/acme/env/prod/marketing-site/db"
    for parts in (("..",), ("a/../../b",), ()):
        with pytest.raises(CatalystError):
            n.openbao_path("acme", "prod", *parts)


def test_spiffe_ids() -> None:
    uri = n.spiffe_id("omantel", "muscatpharmacy", "wordpress")
    assert uri == "spiffe://omantel/ns/muscatpharmacy/sa/wordpress"
    assert n.parse_spiffe_id(uri) == ("omantel", "muscatpharmacy", "wordpress")
    for bad in (
        "spiffe://omantel/ns/a",
        "https://omantel/ns/a/sa/b",
        "spiffe://omantel.openova.io/ns/a/sa/b",
    ):
        with pytest.raises(CatalystError):
            n.parse_spiffe_id(bad)


# ------------------------------------------------------------------------------------------------
# R-NAME-20..22 Blueprints, dependency Apps, Application names (D-02)


def test_blueprint_naming() -> None:
    assert n.blueprint_name("wordpress") == "bp-wordpress"
    assert n.blueprint_folder("bp-cert-manager") == "cert-manager"
    assert n.blueprint_oci_ref("wordpress", "1.3.0") == "ghcr.io/openova-io/bp-wordpress:1.3.0"
    assert n.blueprint_oci_ref("bp-wordpress", "1.3.0", registry="harbor.x.io/openova-io/") == (
        "harbor.x.io/openova-io/bp-wordpress:1.3.0"
    )
    assert n.blueprint_release_tag("platform", "cilium", "1.16.5") == "platform/cilium/v1.16.5"
    assert n.parse_release_tag("products/catalyst/v0.4.0") == ("products", "catalyst", "0.4.0")


@pytest.mark.parametrize("name", ["wordpress", "bp-", "bp-Word", "bp-bp-x", "bp-" + "a" * 61])
def test_bad_blueprint_names(name: str) -> None:
    problems = n.problems_for_blueprint_name(name, "spec.blueprint.name")
    assert problems and problems[0].field == "spec.blueprint.name" and "R-NAME-20" in problems[0].message


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (n.blueprint_oci_ref, ("wordpress", "v1.3.0")),
        (n.blueprint_oci_ref, ("wordpress", "1.3")),
        (n.blueprint_release_tag, ("extras", "wordpress", "1.0.0")),
        (n.parse_release_tag, ("platform/x/1.0.0",)),
    ],
)
def test_bad_blueprint_artifacts(call: object, args: tuple[str, ...]) -> None:
    with pytest.raises(CatalystError):
        call(*args)  # type: ignore[operator]


def test_semver_hint() -> None:
    assert "drop the leading 'v'" in n.problems_for_semver("v1.0.0")[0].message


def test_dependency_app_names() -> None:
    assert n.dedicated_dependency_name("marketing-site", "bp-postgres") == "marketing-site-postgres"
    assert n.dedicated_dependency_name("blog", "redis") == "blog-redis"
    assert n.shared_service_name("postgres") == "shared-postgres"
    assert n.shared_service_name("bp-redis") == "shared-redis"
    with pytest.raises(CatalystError):
        n.dedicated_dependency_name("a" * 60, "bp-postgres")  # would exceed 63


@pytest.mark.parametrize("name", ["marketing-site", "shared-postgres", "a", "wp2", "a" * 63])
def test_app_names_accepted(name: str) -> None:
    assert n.is_valid_app_name(name)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("shared-blueprints", "reserved"),
        ("Marketing", "DNS-1123"),
        ("-x", "DNS-1123"),
        ("x-", "DNS-1123"),
        ("a" * 64, "at most 63"),
        ("a_b", "DNS-1123"),
        ("", "empty"),
    ],
)
def test_app_names_rejected(name: str, fragment: str) -> None:
    problems = n.problems_for_app_name(name)
    assert problems and fragment in problems[0].message and "D-02" in problems[0].message
    assert problems[0].field == "metadata.name"


# ------------------------------------------------------------------------------------------------
# R-NAME-23 labels


def test_workload_labels() -> None:
    labels = n.workload_labels(
        sovereign="omantel",
        organization="acme",
        environment="acme-prod",
        host_cluster="hz-fsn-rtz-prod",
        application="marketing-site",
        blueprint="bp-wordpress",
        blueprint_version="1.3.0",
    )
    assert labels == {
        "openova.io/sovereign": "omantel",
        "openova.io/organization": "acme",
        "openova.io/environment": "acme-prod",
        "openova.io/vcluster": "acme",
        "openova.io/host-cluster": "hz-fsn-rtz-prod",
        "openova.io/application": "marketing-site",
        "openova.io/blueprint": "bp-wordpress",
        "openova.io/blueprint-version": "1.3.0",
    }
    full = {**labels, **n.kubernetes_labels(name="wordpress", instance="marketing-site")}
    assert n.problems_for_workload_labels(full) == []
    missing = n.problems_for_workload_labels({"openova.io/sovereign": "omantel"})
    assert len(missing) == 2 and "openova.io/organization" in missing[0].message


def test_workload_labels_validate_values() -> None:
    with pytest.raises(CatalystError) as err:
        n.workload_labels(
            sovereign="omantel",
            organization="acme",
            environment="acme-prod",
            host_cluster="hz-fsn-primary-prod",
            application="marketing-site",
            blueprint="bp-wordpress",
            blueprint_version="1.3.0",
        )
    assert err.value.problems[0].field == "hostCluster"


def test_cloud_resource_labels() -> None:
    assert n.cloud_resource_labels(
        provider_code="hz", region_code="fsn", building_block="rtz", env_type="prod"
    ) == {
        "openova.io/provider": "hetzner",
        "openova.io/region": "fsn",
        "openova.io/building-block": "rtz",
        "openova.io/env-type": "prod",
        "openova.io/cluster": "hz-fsn-rtz-prod",
        "openova.io/managed-by": "catalyst",
    }
    with pytest.raises(CatalystError):
        n.cloud_resource_labels(
            provider_code="hz", region_code="fsn", building_block="rtz", env_type="prod", managed_by="someone"
        )


@pytest.mark.parametrize(
    ("labels", "ok"),
    [
        ({"tier": "regulated"}, True),
        ({"openova.io/tier": ""}, True),
        ({"tier": "has space"}, False),
        ({"tier": "x" * 64}, False),
        ({"Bad Key": "x"}, False),
        ({"-bad.io/x": "y"}, False),
    ],
)
def test_label_syntax(labels: dict[str, str], ok: bool) -> None:
    assert (n.problems_for_labels(labels) == []) is ok


# ------------------------------------------------------------------------------------------------
# R-NAME-24 banned terms


@pytest.mark.parametrize(
    ("text", "term", "found"),
    [
        ("Create a Tenant", "Tenant", "Tenant"),
        ("all tenants are billed", "Tenant", "tenants"),
        ("a per-tenant quota", "Tenant", "tenant"),
        ("restart the workspace-controller", "Workspace", "workspace"),
        ("the Operator approves the change", "Operator", "Operator"),
        ("Install the Module", "Module", "Module"),
        ("pick a template", "Template", "template"),
        ("your WordPress Instance is ready", "Instance", "Instance"),
        ("the Lifecycle  Manager", "Lifecycle Manager", "Lifecycle  Manager"),
        ("open the Bootstrap wizard", "Bootstrap wizard", "Bootstrap wizard"),
        ("Backstage plugin", "Backstage", "Backstage"),
        ("Synapse by OpenOva", "Synapse", "Synapse"),
        ("welcome, client!", "Client", "client"),
    ],
)
def test_banned_terms_found(text: str, term: str, found: str) -> None:
    hits = n.find_banned_terms(text, where="card.title")
    assert [(h.term, h.found, h.where) for h in hits] == [(term, found, "card.title")]
    assert text[hits[0].column - 1 :].startswith(found)


@pytest.mark.parametrize(
    "text",
    [
        "the JobTemplate ConfigMaps exist",  # a different word, not "template"
        "Flux reads clusters/_template/bootstrap-kit",  # a path is a technical token
        "rotates oauth-client-secret every 90 days",  # OIDC client (R-BP-07)
        "wp-keycloak-client",
        "a Kubernetes operator reconciles it",
        "the OIDC client",
        "a Go module",
        "a Helm template",
        "Matrix Synapse homeserver",
        "Matrix/Synapse",
        "label app.kubernetes.io/instance",
        "multi-tenancy",
        "templated values",
        "an EC2 instance",
        "a Terraform workspace",
        "the `template` key",
    ],
)
def test_banned_terms_not_flagged(text: str) -> None:
    assert n.find_banned_terms(text) == []


def test_banned_term_position_and_allow_list() -> None:
    hits = n.find_banned_terms("ok\n  a Tenant here", where="msg")
    assert (hits[0].line, hits[0].column) == (2, 5)
    assert "msg:2:5" in str(hits[0]) and "Organization" in str(hits[0])
    assert n.find_banned_terms("integrates with a customer's Backstage", allow=["customer's Backstage"]) == []


@pytest.mark.parametrize(
    ("name", "flagged"),
    [
        ("tenantId", True),
        ("tenant_id", True),
        ("workspaceName", True),
        ("lifecycleManager", True),
        ("instance", True),
        ("clientId", False),
        ("oauthClientSecret", False),
        ("jobTemplate", False),
        ("templateRef", True),
        ("k8sOperator", False),
        ("environment", False),
    ],
)
def test_banned_terms_in_field_names(name: str, flagged: bool) -> None:
    assert bool(n.find_banned_terms_in_name(name, "spec")) is flagged


def test_lint_walks_keys_and_values_with_paths() -> None:
    doc = {
        "metadata": {"labels": {"app.kubernetes.io/instance": "web", "openova.io/tenant": "x"}},
        "spec": {
            "card": {"title": "My Workspace"},
            "tenantId": "acme",
            "items": [{"note": "fine"}, {"note": "a Tenant"}],
        },
    }
    hits = n.lint_banned_terms(doc)
    assert [(h.term, h.where) for h in hits] == [
        ("Tenant", "metadata.labels[openova.io/tenant]"),
        ("Workspace", "spec.card.title"),
        ("Tenant", "spec.tenantId"),
        ("Tenant", "spec.items[1].note"),
    ]
    problems = n.problems_for_banned_terms(hits, source="api")
    assert problems[1].field == "spec.card.title" and "R-NAME-24" in problems[1].message
