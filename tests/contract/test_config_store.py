"""catalyst-config in the Sovereign's Gitea: a bad file never keeps the Sovereign from starting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.config_store import CONFIG_BRANCH, CONFIG_REPO, SYSTEM_ORG, ConfigStore
from catalyst_sim.model.resources import Organization


@pytest.fixture
def gitea(tmp_path: Path) -> Iterator[GiteaClient]:
    with EmbeddedForge(tmp_path / "forge", VirtualClock()) as forge, GiteaClient(forge.url, forge.token) as client:
        yield client


def test_load_skips_a_broken_file_names_it_and_keeps_the_rest(gitea: GiteaClient) -> None:
    store = ConfigStore(gitea)
    store.ensure_layout()
    acme = Organization.model_validate({
        "apiVersion": "catalyst.openova.io/v1alpha1", "kind": "Organization", "metadata": {"name": "acme"},
        "spec": {"contact": "ops@acme.example", "plan": "standard"}})
    store.put(acme, message="acme")
    gitea.commit_files(SYSTEM_ORG, CONFIG_REPO, CONFIG_BRANCH, {
        "organizations/broken.yaml": "kind: Organization\nmetadata: {name: [unclosed\n",
        "policies/acme-prod-policy.yaml": "kind: EnvironmentPolicy\nspec: {rules: [{kind: no-such-rule}]}\n",
    }, message="hand edits")

    restarted = ConfigStore(gitea)
    restarted.load()

    assert restarted.find("Organization", "acme") is not None
    assert restarted.problems and all("organizations/broken.yaml" in str(p) for p in restarted.problems)
    assert restarted.find("EnvironmentPolicy", "acme-prod-policy") is None  # the policy loader's to judge
