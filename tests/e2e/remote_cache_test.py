"""A shared remote cache (pants.remote-cache.toml) on a real REAPI server: BuildGrid on loopback.

Clone A packages churn from nothing and writes every Process result to the cache; clone B, at
another path with empty local caches of its own (Pants' store, named caches, execution root),
packages it again and gets the very same PEX and image, with the heavy Processes served by the
cache. An unreachable cache leaves the build succeeding with one warning.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from e2e import buildgrid_audit, buildgrid_server
from e2e.remote_cache_flow import (
    HEAVY,
    MLBUILD_STEPS,
    Build,
    clean_dist,
    clone,
    empty_cache_args,
    package,
    remote_cache_args,
)
from e2e.repo import pants
from mlbuild.tools_required import skip_or_fail

# NB: imported for its path (so Pants puts it in the sandbox); it runs under BuildGrid's python.
AUDIT = Path(buildgrid_audit.__file__)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[buildgrid_server.Server]:
    try:
        running = buildgrid_server.start(tmp_path_factory.mktemp("buildgrid"))
    except buildgrid_server.BuildGridUnavailable as e:
        # NB: like a missing system tool: a visible skip here, a failure under CI.
        skip_or_fail(str(e))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def builds(
    server: buildgrid_server.Server, tmp_path_factory: pytest.TempPathFactory
) -> Tuple[Build, Build, Path, Path]:
    a_root, b_root = tmp_path_factory.mktemp("clone-a"), tmp_path_factory.mktemp("clone-b")
    a_repo = clone(a_root / "checkout")
    b_repo = clone(b_root / "somewhere" / "else" / "checkout")
    a = package(a_repo, *remote_cache_args(server.address, write=True), *empty_cache_args(a_root / "scratch"))
    assert a.result.exit_code == 0, a.result.stderr[-4000:]
    b = package(b_repo, *remote_cache_args(server.address, write=False), *empty_cache_args(b_root / "scratch"))
    assert b.result.exit_code == 0, b.result.stderr[-4000:] + "\n--- BuildGrid:\n" + server.log[-2000:]
    print(f"cold (clone A, writing): {a.seconds:.1f} s; remote-warm (clone B): {b.seconds:.1f} s")
    return a, b, a_root, b_root


def test_second_clone_builds_the_same_pex_and_image(builds: Tuple[Build, Build, Path, Path]) -> None:
    a, b, _, _ = builds
    assert a.pex_sha256 and a.image_digest
    assert (b.pex_sha256, b.image_digest) == (a.pex_sha256, a.image_digest)


def test_first_clone_wrote_every_result_to_the_cache(builds: Tuple[Build, Build, Path, Path]) -> None:
    a, _, _, _ = builds
    assert a.counters.get("remote_cache_write_errors") == 0, a.counters
    assert a.counters.get("remote_cache_write_successes", 0) >= len(HEAVY), a.counters
    assert a.counters.get("local_cache_requests_cached") == 0, "clone A was meant to start from empty caches"
    heavy = a.ran_heavy()
    assert {h for h in HEAVY if any(h in d for d in heavy)} == set(HEAVY), a.ran


def test_heavy_processes_come_from_the_remote_cache(builds: Tuple[Build, Build, Path, Path]) -> None:
    _, b, _, _ = builds
    assert b.counters.get("local_cache_requests_cached") == 0, "clone B was meant to start from empty caches"
    assert b.counters.get("remote_cache_read_errors") == 0, b.counters
    assert b.counters.get("remote_cache_requests_uncached") == 0, (b.counters, b.ran)
    assert b.counters.get("remote_cache_requests_cached", 0) >= len(HEAVY), b.counters
    assert b.ran_heavy() == [], f"ran instead of coming from the cache: {b.ran_heavy()}"


def test_a_machine_with_another_path_gets_mlbuilds_steps_from_the_cache(
    server: buildgrid_server.Server, builds: Tuple[Build, Build, Path, Path], tmp_path: Path
) -> None:
    """Clone C, empty caches, an extra folder first on PATH. With the config's fixed
    `[pex].executable_search_paths` mlbuild's steps still hit; only Pants' PEX builds, which
    key on the interpreters found on PATH, run again, and make the same bytes."""
    a, _, _, _ = builds
    (tmp_path / "bin").mkdir()
    c = package(
        clone(tmp_path / "checkout"),
        *remote_cache_args(server.address, write=False),
        *empty_cache_args(tmp_path / "scratch"),
        env={"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"},
    )
    assert c.result.exit_code == 0, c.result.stderr[-4000:]
    assert (c.pex_sha256, c.image_digest) == (a.pex_sha256, a.image_digest)
    assert [d for d in c.ran if any(step in d for step in MLBUILD_STEPS)] == [], c.ran
    assert c.counters.get("remote_cache_requests_cached", 0) >= len(MLBUILD_STEPS), c.counters


def test_no_cache_key_names_the_machine_it_was_built_on(
    server: buildgrid_server.Server, builds: Tuple[Build, Build, Path, Path]
) -> None:
    """Every Command Pants stored: none names a checkout or a cache folder; mlbuild's own have
    only relative arguments and no environment but Pants' cache-key markers."""
    _, _, a_root, b_root = builds
    python = buildgrid_server.ensure_installed()
    # NB: -I, so the script's own folder (with buildgrid_server.py) does not shadow BuildGrid.
    dump = subprocess.run(
        [str(python), "-I", str(AUDIT), str(server.cas_dir)], capture_output=True, text=True, check=True
    )
    commands = json.loads(dump.stdout)
    assert commands, "no Command found in the CAS"
    for command in commands:
        words = [*command["arguments"], *command["env"].values(), command["working_directory"]]
        leaked = [w for w in words if str(a_root) in w or str(b_root) in w]
        assert not leaked, f"{command['arguments'][:6]} carries a checkout or scratch path: {leaked}"
    ours = [
        c
        for c in commands
        if any(a == "-m" and b.startswith("mlbuild.") for a, b in zip(c["arguments"], c["arguments"][1:]))
    ]
    assert len(ours) >= 4, [c["arguments"][:3] for c in commands]
    for command in ours:
        absolute = [arg for arg in command["arguments"] if arg.startswith("/")]
        extra = {k for k in command["env"] if not k.startswith("PANTS_CACHE_KEY_")}
        assert not absolute and not extra, (command["arguments"], command["env"])
        assert all(not p.startswith("/") for p in command["output_files"] + command["output_directories"]), command


def test_unreachable_cache_builds_with_one_warning(builds: Tuple[Build, Build, Path, Path]) -> None:
    """Clone A again, as a laptop reads the cache (the config's read-only default), its Process
    cache off (so every Process asks the remote one), the address a closed port: the build
    still succeeds, and says so once."""
    _, _, a_root, _ = builds
    repo = a_root / "checkout"
    clean_dist(repo)
    closed = f"grpc://127.0.0.1:{buildgrid_server.free_port()}"
    result = pants(
        repo,
        "--stats-log",
        "--no-local-cache",
        *remote_cache_args(closed, write=False),
        *empty_cache_args(a_root / "scratch"),
        "package",
        "docker/debian-python3.11:base",
        timeout=1800,
    )
    assert result.exit_code == 0, result.stderr[-4000:]
    warnings = [line for line in result.stderr.splitlines() if "[WARN]" in line and "remote cache" in line]
    assert len(warnings) == 1, "\n".join(warnings)
    assert "Failed to read from remote cache" in warnings[0] and "Connection refused" in warnings[0], warnings[0]
    assert "remote_cache_read_errors: 0" not in result.stderr
