"""However Pants ends, nothing of a build stays where Pants runs its Processes.

Pants makes a sandbox per Process and an `immutable_inputs*` folder per process under its
`local_execution_root_dir` (the system temp folder unless set), and when it is killed nothing
cleans them. The launcher points that option at a folder of the checkout's own and sweeps it
whenever no Pants process of the checkout is alive (see `./pants`). Each ending in turn, in one
copy of the repo, with a build running when it ends (`--no-local-cache`, and a code edit, so
Processes really run): a normal end, Ctrl-C, pantsd stopped (SIGTERM: Pants 2.17 has no
`kill-pantsd` goal, `./pants kill-pantsd` only answers "Unknown goal"), pantsd killed with SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from e2e.repo import copy_repo, pantsd_pid, stop_pantsd

IRIS = "src/python/pipelines/iris:train"


def exec_root(repo: Path) -> Path:
    """Where the launcher points Pants' `local_execution_root_dir` for this checkout."""
    cache = os.environ.get("MLBUILD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlbuild"
    )
    return Path(cache) / "exec-root" / hashlib.sha256(str(repo).encode()).hexdigest()[:16]


def files_under(root: Path) -> List[str]:
    """Every file or link left (folders alone hold nothing)."""
    return (
        sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir() or p.is_symlink())
        if root.exists()
        else []
    )


def env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("PANTS_")}


def start(repo: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["./pants", "--no-dynamic-ui", *args],
        cwd=repo,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./pants", "--no-dynamic-ui", *args], cwd=repo, env=env(), capture_output=True, text=True, timeout=1200
    )


def edit(repo: Path, n: int) -> None:
    pipeline = repo / "src/python/pipelines/iris/pipeline.py"
    pipeline.write_text(pipeline.read_text() + f"\n# edit {n}\n")


def wait_for_a_sandbox(root: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    """Until some Process is running: a sandbox with files in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.name.startswith("pants-sandbox-") and any(p.iterdir()) for p in root.glob("*") if p.is_dir()):
            return
        assert (
            proc.poll() is None
        ), f"pants ended before any Process ran: {proc.stderr.read()[-2000:] if proc.stderr else ''}"
        time.sleep(0.1)
    raise AssertionError("no Process started")


def wait_until_no_process_holds(root: Path, timeout: float = 300) -> None:
    """Processes a killed pantsd had started may finish their work first (they hold the lock too)."""
    lock = Path(str(root) + ".lock")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["flock", "-n", "-x", str(lock), "true"]).returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"something still holds {lock}")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    repo = copy_repo(tmp_path_factory.mktemp("leftovers") / "repo")
    yield repo
    stop_pantsd(repo)
    subprocess.run(["rm", "-rf", str(exec_root(repo))], check=False)
    Path(str(exec_root(repo)) + ".lock").unlink(missing_ok=True)
    Path(str(exec_root(repo)) + ".checkout").unlink(missing_ok=True)


def test_a_normal_end_leaves_no_file(repo: Path) -> None:
    edit(repo, 1)
    done = run(repo, "--no-pantsd", "package", IRIS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert exec_root(repo).is_dir()
    assert files_under(exec_root(repo)) == []


def test_ctrl_c_during_a_build_leaves_no_file(repo: Path) -> None:
    edit(repo, 2)
    proc = start(repo, "--no-pantsd", "--no-local-cache", "package", IRIS)
    wait_for_a_sandbox(exec_root(repo), proc)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=300)
    wait_until_no_process_holds(exec_root(repo))
    assert files_under(exec_root(repo)) == []


def test_stopping_pantsd_leaves_no_file(repo: Path) -> None:
    edit(repo, 3)
    done = run(repo, "package", IRIS)  # NB: with pantsd
    assert done.returncode == 0, done.stderr[-3000:]
    assert pantsd_pid(repo)
    stop_pantsd(repo)
    wait_until_no_process_holds(exec_root(repo))
    assert files_under(exec_root(repo)) == []


def test_pantsd_killed_mid_build_leaves_nothing_once_the_next_pants_starts(repo: Path) -> None:
    edit(repo, 4)
    proc = start(repo, "--no-local-cache", "package", IRIS)
    wait_for_a_sandbox(exec_root(repo), proc)
    pid = pantsd_pid(repo)
    assert pid, "no pantsd"
    os.kill(pid, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    # NB: SIGKILL leaves Pants no chance to clean: its sandboxes stay until the next launch.
    wait_until_no_process_holds(exec_root(repo))
    assert run(repo, "--no-pantsd", "--version").returncode == 0
    assert files_under(exec_root(repo)) == []


def test_the_folder_of_a_deleted_checkout_goes_at_the_next_launch(repo: Path, tmp_path: Path) -> None:
    root = exec_root(repo).parent
    gone, busy = root / "0000gone00000000", root / "0000busy00000000"
    for folder in (gone, busy):
        (folder / "process-execution-x").mkdir(parents=True)
        (folder / "process-execution-x/file").write_text("left by a killed build")
        Path(f"{folder}.checkout").write_text(f"{tmp_path / 'deleted-checkout'}\n")
        Path(f"{folder}.lock").touch()
    # A Pants process of that checkout still holds the lock: its folder is in use.
    holder = subprocess.Popen(["flock", "-s", f"{busy}.lock", "sleep", "300"])
    try:
        time.sleep(0.5)
        assert run(repo, "--no-pantsd", "--version").returncode == 0
        assert not gone.exists() and not Path(f"{gone}.lock").exists() and not Path(f"{gone}.checkout").exists()
        assert files_under(busy) == ["process-execution-x/file"]
        assert Path(f"{exec_root(repo)}.checkout").read_text() == f"{repo}\n"
    finally:
        holder.kill()
        holder.wait()
        subprocess.run(["rm", "-rf", str(busy), f"{busy}.lock", f"{busy}.checkout"], check=False)
