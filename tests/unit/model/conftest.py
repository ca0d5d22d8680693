"""Valid example documents for the model tests; each test mutates its own fresh copy."""

from __future__ import annotations

from typing import Any

import pytest

API = "catalyst.openova.io/v1alpha1"


@pytest.fixture
def sovereign_doc() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Sovereign",
        "metadata": {"name": "omantel"},
        "spec": {
            "domain": "omantel.omani.works",
            "domainMode": "pool",
            "provider": "hetzner",
            "regions": [
                {"region": "fsn", "buildingBlocks": ["mgt", "rtz", "dmz"]},
                {"region": "hel", "buildingBlocks": ["mgt", "rtz"]},
            ],
            "keycloakTopology": "per-organization",
            "sizing": {
                "controlPlaneSize": "cx32",
                "haEnabled": True,
                "workerSize": "cx42",
                "workerCount": 3,
                "autoscaler": {"min": 2, "max": 6},
            },
        },
    }


@pytest.fixture
def organization_doc() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Organization",
        "metadata": {"name": "acme", "labels": {"tier": "regulated"}},
        "spec": {"contact": "ops@acme.example", "plan": "business"},
    }


@pytest.fixture
def environment_doc() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Environment",
        "metadata": {"name": "acme-prod"},
        "spec": {
            "organization": "acme",
            "envType": "prod",
            "placement": {
                "regions": [
                    {"region": "fsn", "buildingBlocks": ["rtz", "dmz"]},
                    {"region": "hel", "buildingBlocks": ["rtz"]},
                ]
            },
        },
    }


@pytest.fixture
def application_doc() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": {"name": "marketing-site"},
        "spec": {
            "environment": "acme-prod",
            "blueprint": {"name": "bp-wordpress", "version": "1.3.0"},
            "config": {"domain": "marketing.acme.example", "replicas": 2},
            "bindings": {"db": "marketing-site-postgres"},
        },
    }


@pytest.fixture
def policy_doc() -> dict[str, Any]:
    """The golden acme-prod policy of R-EP-04, written out by hand."""
    return {
        "apiVersion": API,
        "kind": "EnvironmentPolicy",
        "metadata": {"name": "acme-prod-policy", "namespace": "catalyst-system"},
        "spec": {
            "appliesTo": {"environments": ["acme-prod"]},
            "rules": [
                {"kind": "pr-required", "approvers": ["team-platform", "team-security"], "minApprovals": 2},
                {"kind": "re-score-gate", "minScore": 80, "severity": "blocking"},
                {"kind": "soak", "sourceEnvironment": "acme-stg", "duration": "72h"},
                {"kind": "change-window", "cron": "0 14 * * 2,4", "duration": "2h"},
            ],
        },
    }
