"""configSchema validation (R-CS-01..04): defaults, every violation with its JSON pointer, formats,
vendor extensions, and schemas that are themselves invalid."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from catalyst_sim.control.provisioning.configschema import (
    ApplicationRef,
    application_refs,
    apply_defaults,
    check_schema,
    config_problems,
    is_email,
    is_hostname,
    validate_config,
)
from catalyst_sim.model.base import CatalystError

WORDPRESS: dict[str, Any] = {
    "type": "object",
    "required": ["domain", "adminEmail"],
    "properties": {
        "domain": {"type": "string", "format": "hostname", "x-catalyst-ui-hint": "domain-picker"},
        "adminEmail": {"type": "string", "format": "email"},
        "title": {"type": "string", "default": "My site", "description": "Shown in the header."},
        "replicas": {"type": "integer", "default": 2, "minimum": 1, "maximum": 20},
        "adminPassword": {"type": "string", "x-catalyst-ui-hint": "password"},
        "postgres": {
            "type": "object",
            "default": {"mode": "embedded"},
            "oneOf": [
                {"properties": {"mode": {"const": "embedded"}}, "required": ["mode"]},
                {
                    "properties": {
                        "mode": {"const": "external"},
                        "ref": {
                            "type": "string",
                            "x-catalyst-ui-hint": "application-ref",
                            "x-catalyst-ui-filter": {"blueprint": "bp-postgres", "environment": "current"},
                        },
                    },
                    "required": ["mode", "ref"],
                },
            ],
        },
        "smtp": {
            "type": "object",
            "properties": {"port": {"type": "integer", "default": 587}, "host": {"type": "string"}},
        },
        "tls": {"type": "object", "properties": {"issuer": {"type": "string"}}},
    },
}
GOOD = {"domain": "marketing.acme.io", "adminEmail": "web@acme.io"}


def fields(schema: dict[str, Any], config: Any) -> dict[str, str]:
    with pytest.raises(CatalystError) as err:
        validate_config(schema, config, object="Application/marketing-site")
    assert err.value.code == "Invalid"
    assert all(p.object == "Application/marketing-site" for p in err.value.problems)
    return {p.field: p.message for p in err.value.problems}


def test_the_wordpress_schema_is_valid() -> None:
    assert check_schema(WORDPRESS) == []


def test_defaults_are_applied_recursively() -> None:
    out = validate_config(WORDPRESS, GOOD, object="Application/marketing-site")
    assert out == {
        **GOOD,
        "title": "My site",
        "replicas": 2,
        "postgres": {"mode": "embedded"},
        "smtp": {"port": 587},
    }
    assert "tls" not in out  # an object without defaults is not invented
    assert GOOD == {"domain": "marketing.acme.io", "adminEmail": "web@acme.io"}  # input untouched


def test_defaults_never_override_given_values() -> None:
    out = apply_defaults(
        WORDPRESS, {"replicas": 5, "smtp": {"port": 25}, "postgres": {"mode": "external", "ref": "pg"}}
    )
    assert out["replicas"] == 5 and out["smtp"] == {"port": 25}
    assert out["postgres"] == {"mode": "external", "ref": "pg"}


def test_defaults_in_the_matching_one_of_branch_and_items_and_refs() -> None:
    schema = {
        "type": "object",
        "definitions": {"db": {"type": "object", "properties": {"pool": {"type": "integer", "default": 5}}}},
        "properties": {
            "store": {
                "oneOf": [
                    {
                        "properties": {
                            "kind": {"const": "s3"},
                            "region": {"type": "string", "default": "eu"},
                        },
                        "required": ["kind"],
                    },
                    {
                        "properties": {
                            "kind": {"const": "disk"},
                            "size": {"type": "string", "default": "10Gi"},
                        },
                        "required": ["kind"],
                    },
                ]
            },
            "users": {
                "type": "array",
                "items": {"type": "object", "properties": {"role": {"type": "string", "default": "viewer"}}},
            },
            "db": {"$ref": "#/definitions/db"},
            "extra": {
                "allOf": [{"properties": {"a": {"default": 1}}}, {"properties": {"b": {"default": 2}}}]
            },
        },
    }
    assert check_schema(schema) == []
    out = apply_defaults(
        schema, {"store": {"kind": "disk"}, "users": [{"name": "a"}, {"role": "admin"}], "extra": {}}
    )
    assert out["store"] == {"kind": "disk", "size": "10Gi"}
    assert out["users"] == [{"name": "a", "role": "viewer"}, {"role": "admin"}]
    assert out["db"] == {"pool": 5}
    assert out["extra"] == {"a": 1, "b": 2}


def test_r_cs_04_replicas_zero_and_missing_admin_email_together() -> None:
    found = fields(WORDPRESS, {"domain": "marketing.acme.io", "replicas": 0})
    assert set(found) == {"/adminEmail", "/replicas"}
    assert "'adminEmail' is a required property" in found["/adminEmail"]
    assert "0 is less than the minimum of 1" in found["/replicas"]


def test_every_violation_with_its_pointer() -> None:
    found = fields(
        WORDPRESS,
        {
            "domain": "bad_host!",
            "adminEmail": "nobody",
            "replicas": 21,
            "title": 7,
            "postgres": {"mode": "external"},
            "smtp": {"port": "25"},
        },
    )
    assert set(found) == {"/domain", "/adminEmail", "/replicas", "/title", "/postgres", "/smtp/port"}
    assert "not a valid hostname" in found["/domain"]
    assert "not a valid email" in found["/adminEmail"]
    assert "21 is greater than the maximum of 20" in found["/replicas"]
    assert "must match exactly one of the allowed shapes" in found["/postgres"]
    assert "/postgres/ref: 'ref' is a required property" in found["/postgres"]


def test_missing_domain_points_at_the_property() -> None:
    assert set(fields(WORDPRESS, {})) == {"/domain", "/adminEmail"}


def test_non_object_config() -> None:
    with pytest.raises(CatalystError, match="config must be an object"):
        validate_config(WORDPRESS, ["a"], object="x")
    assert validate_config({"type": "object"}, None, object="x") == {}
    assert validate_config(None, {"a": 1}, object="x") == {"a": 1}


def test_pointer_escaping_and_array_indexes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a/b": {"type": "integer"},
            "hosts": {"type": "array", "items": {"type": "string", "format": "hostname"}},
        },
    }
    found = fields(schema, {"a/b": "x", "hosts": ["ok.example", "not ok"]})
    assert set(found) == {"/a~1b", "/hosts/1"}


def test_dependencies_keyword_draft_7() -> None:
    schema = {
        "type": "object",
        "properties": {"tls": {"type": "boolean"}, "cert": {"type": "string"}},
        "dependencies": {"tls": ["cert"]},
    }
    assert check_schema(schema) == []
    assert fields(schema, {"tls": True}) == {"/cert": "'cert' is a dependency of 'tls'"}
    assert config_problems(schema, {"tls": True, "cert": "x"}) == []


@pytest.mark.parametrize(
    "value", ["example.com", "a.b-c.d", "localhost", "x" * 63 + ".io", "MiXeD.Case.Org", "trailing.dot."]
)
def test_hostnames_accepted(value: str) -> None:
    assert is_hostname(value)


@pytest.mark.parametrize(
    "value",
    ["", "-a.com", "a-.com", "a..com", "bad_host", "sp ace.com", "x" * 64 + ".io", ("a" * 62 + ".") * 5],
)
def test_hostnames_rejected(value: str) -> None:
    assert not is_hostname(value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ahmed@muscatpharmacy.om", True),
        ("a.b+tag@x.io", True),
        ("nobody", False),
        ("a@", False),
        ("@x.io", False),
        ("a b@x.io", False),
        ("a..b@x.io", False),
        ("a@bad_host", False),
    ],
)
def test_emails(value: str, ok: bool) -> None:
    assert is_email(value) is ok


@pytest.mark.parametrize(
    ("mutate", "field", "needle"),
    [
        (
            lambda s: s["properties"]["replicas"].update(minimum="one"),
            "spec.configSchema.properties.replicas.minimum",
            "is not of type 'number'",
        ),
        (lambda s: s.update(type="array"), "spec.configSchema.type", "must be of type 'object'"),
        (lambda s: s.update(required="domain"), "spec.configSchema.required", "is not of type 'array'"),
        (
            lambda s: s["properties"]["title"].update(requried=True),
            "spec.configSchema.properties.title.requried",
            "unknown JSON Schema keyword",
        ),
        (
            lambda s: s["properties"]["replicas"].update(default=0),
            "spec.configSchema.properties.replicas.default",
            "does not satisfy its own schema",
        ),
        (
            lambda s: s["properties"]["adminPassword"].update({"x-catalyst-ui-hint": "secret"}),
            "spec.configSchema.properties.adminPassword.x-catalyst-ui-hint",
            "must be one of",
        ),
        (
            lambda s: s["properties"]["title"].update({"x-catalyst-widget": "big"}),
            "spec.configSchema.properties.title.x-catalyst-widget",
            "unknown Catalyst extension",
        ),
        (
            lambda s: s["properties"]["title"].update({"x-catalyst-ui-filter": {"blueprint": "bp-x"}}),
            "spec.configSchema.properties.title.x-catalyst-ui-filter",
            "only applies with",
        ),
        (
            lambda s: s["properties"]["postgres"]["oneOf"][1]["properties"]["ref"][
                "x-catalyst-ui-filter"
            ].update(environment="any"),
            "spec.configSchema.properties.postgres.oneOf[1].properties.ref.x-catalyst-ui-filter.environment",
            "must be one of current",
        ),
        (
            lambda s: s.update({"$schema": "https://json-schema.org/draft/2020-12/schema"}),
            "spec.configSchema.$schema",
            "draft-07",
        ),
    ],
)
def test_invalid_schemas_are_rejected_clearly(mutate: Any, field: str, needle: str) -> None:
    schema = copy.deepcopy(WORDPRESS)
    mutate(schema)
    problems = check_schema(schema, object="Blueprint/bp-wordpress@1.3.0")
    assert any(p.field == field and needle in p.message for p in problems), problems
    with pytest.raises(CatalystError) as err:
        validate_config(schema, GOOD, object="Application/x")
    assert err.value.code == "InvalidSchema"


def test_schema_must_be_a_mapping() -> None:
    assert "must be a JSON Schema object" in check_schema(["type", "object"])[0].message


def test_other_vendor_extensions_are_ignored() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "x-kubernetes-preserve-unknown-fields": True}},
    }
    assert check_schema(schema) == []


def test_application_refs_follow_the_matching_branch_only() -> None:
    external = apply_defaults(WORDPRESS, {**GOOD, "postgres": {"mode": "external", "ref": "pg-main"}})
    assert application_refs(WORDPRESS, external) == [
        ApplicationRef("/postgres/ref", "pg-main", "bp-postgres", "current")
    ]
    embedded = apply_defaults(WORDPRESS, {**GOOD, "postgres": {"mode": "embedded", "ref": "ignored"}})
    assert application_refs(WORDPRESS, embedded) == []
    assert application_refs(WORDPRESS, apply_defaults(WORDPRESS, GOOD)) == []
