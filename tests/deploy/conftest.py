"""Fixtures of the offline Terraform checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def quiet_terraform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No ~/.terraformrc warning and no checkpoint (version check) call from the embedded Terraform."""
    rc = tmp_path_factory.mktemp("tfrc") / "terraformrc"
    rc.write_text("")
    mp = pytest.MonkeyPatch()
    mp.setenv("TF_CLI_CONFIG_FILE", str(rc))
    mp.setenv("CHECKPOINT_DISABLE", "1")
    mp.setenv("TF_IN_AUTOMATION", "1")
    yield
    mp.undo()
