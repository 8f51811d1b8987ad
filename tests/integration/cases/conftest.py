"""Fixtures of the case tests: a hub on the parametrised backend with the seed directory,
attachments under the test's temporary directory, and the JSON API client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.api.conftest import Api
from tests.integration.cases.helpers import CaseSettingsFactory


@pytest.fixture
def case_settings(tmp_path: Path) -> CaseSettingsFactory:
    """The ``cases`` settings group for a test hub (attachments under tmp_path)."""

    def make(**overrides: object) -> dict[str, object]:
        return {"attachments_dir": tmp_path / "attachments", **overrides}

    return make


@pytest.fixture
async def running_hub(
    backend: Backend, case_settings: CaseSettingsFactory
) -> AsyncIterator[RunningHub]:
    """A hub on the parametrised backend."""
    hub = await start_hub(backend_settings(backend, cases=case_settings()))
    try:
        yield hub
    finally:
        await hub.server.close()


@pytest.fixture
async def api(running_hub: RunningHub) -> AsyncIterator[Api]:
    """The API client, signed in as nobody (use ``as_`` or ``helpers.as_user``)."""
    async with aiohttp.ClientSession() as http:
        yield Api(http, running_hub.url, None)
