from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.container_run.bwrap_probe import check_host_network
from mlbuild.container_run.errors import SandboxUnavailableError


def test_a_bwrap_that_cannot_make_the_job_network_is_explained(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: Unexpected capabilities but not setuid, old file caps config?' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    with pytest.raises(
        SandboxUnavailableError,
        match=r"cannot make the network of a multi-host job here: bwrap: Unexpected capabilities.*--instance-count 1",
    ):
        check_host_network(str(fake))
