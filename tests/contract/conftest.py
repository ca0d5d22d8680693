"""One embedded Sovereign for every Catalyst API contract test module.

When the journeys run on the embedded backend too, it is the harness's own session Sovereign
(``catalyst_backend``): started once for the whole run, and reset before each test as before each
scenario. Starting one costs seconds (NATS, OpenBao, the mothership), so modules share it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from catalyst_sim.backends.base import BackendOptions
from catalyst_sim.backends.embedded.sovereign import EmbeddedBackend
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.harness.personas import PersonaAuth


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBackend]:
    if request.config.getoption("catalyst_backend") == "embedded":
        shared = request.getfixturevalue("catalyst_backend")
        assert isinstance(shared, EmbeddedBackend)
        yield shared
        return
    own = EmbeddedBackend(BackendOptions(run_dir=tmp_path_factory.mktemp("sovereign")))
    try:
        own.start()
        yield own
    finally:
        own.stop()


@pytest.fixture
def api(backend: EmbeddedBackend) -> Iterator[httpx.Client]:
    """A clean Sovereign; each call carries the token of the addressed Org's admin or the sovereign-admin."""
    backend.reset()
    assert backend.endpoints is not None
    with httpx.Client(base_url=backend.endpoints.catalyst_api, auth=PersonaAuth(backend)) as client:
        yield client


@pytest.fixture
def gitea(backend: EmbeddedBackend) -> Iterator[GiteaClient]:
    assert backend.endpoints is not None
    with GiteaClient(backend.endpoints.gitea_url, backend.endpoints.gitea_token) as client:
        yield client
