"""A cache-only BuildGrid (REAPI CAS + ActionCache) on loopback, for the remote-cache tests.

BuildGrid comes from PyPI into a venv of its own, made once per version under the mlbuild
cache folder (`$MLBUILD_CACHE`, else `$XDG_CACHE_HOME/mlbuild`, else `~/.cache/mlbuild`), so a
fresh CI machine needs only CPython 3.11 and PyPI. Its dependencies are pinned below: they are
what 0.4.4 resolved to when this was written (2026-11), and an unpinned install drifts.

NB: 0.4.4 is the newest BuildGrid that installs on CPython 3.11 (0.9.x needs 3.13); it needs
>= 3.11 itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

VERSION = "0.4.4"
PINS = """
aiohappyeyeballs==2.7.1 aiohttp==3.14.5 aiosignal==1.4.0 alembic==1.20.1 annotated-types==0.8.0
async-lru==2.4.0 attrs==26.1.0 boto3==1.44.8 botocore==1.44.8 buildgrid-metering-client==0.0.4
cachetools==8.0.2 certifi==2026.10.19.post1 cffi==2.1.1 charset-normalizer==3.5.3 click==8.5.1
cryptography==50.0.2 dnspython==2.9.2 frozenlist==1.8.0 grpcio==1.85.3 grpcio-health-checking==1.85.1
grpcio-reflection==1.85.1 idna==3.20 janus==2.0.0 Jinja2==3.1.6 jmespath==1.1.0 jsonschema==4.26.0
jsonschema-specifications==2025.9.1 lark-parser==0.12.0 Mako==1.4.3 MarkupSafe==3.0.4 mmh3==5.3.1
multidict==7.2.1 propcache==0.5.4 protobuf==7.36.2 pycparser==3.12 pycurl==7.49.0 pydantic==2.14.4
pydantic_core==2.50.5 PyJWT==2.15.1 python-dateutil==2.9.0.post0 PyYAML==6.0.4 referencing==0.37.0
requests==2.34.2 rpds-py==2026.9.1 s3transfer==0.19.3 sentry-sdk==2.75.0 six==1.17.0 SQLAlchemy==2.1.9
tenacity==9.2.1 typing-inspection==0.4.5 typing_extensions==4.16.0 urllib3==2.8.0 yarl==1.25.1
""".split()

# NB: `!lru-action-cache` keeps the ActionCache in memory (a restart empties it; the CAS on
# disk stays). The limiter's default of 25 concurrent requests is below Pants' own
# `remote_store_rpc_concurrency` (128) plus `remote_cache_rpc_concurrency` (128): Pants'
# writes then fail with ResourceExhausted. 512 leaves room for both.
CONFIG = """\
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
authorization:
  method: none
storages:
  - !disk-storage &cas
    path: {cas}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: {instance}
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
thread-pool-size: 64
limiter:
  !limiter
  concurrent-request-limit: 512
"""
INSTANCE = "main"


class BuildGridUnavailable(Exception):
    """BuildGrid could not be installed or started; the message says why and what to do."""


def cache_root() -> Path:
    if os.environ.get("MLBUILD_CACHE"):
        return Path(os.environ["MLBUILD_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlbuild"


def _python311() -> str:
    for candidate in (shutil.which("python3.11"), sys.executable if sys.version_info[:2] == (3, 11) else None):
        if candidate:
            return candidate
    raise BuildGridUnavailable(f"BuildGrid {VERSION} needs CPython 3.11 and no python3.11 is on PATH. Fix: install it.")


def _pip_env() -> dict:
    env = dict(os.environ)
    # NB: a machine-wide pip config (these machines' has a constraints file) must not
    # change what gets installed; the pins above are the whole story.
    env["PIP_CONFIG_FILE"] = os.devnull
    bundle = env.get("PANTS_CA_CERTS_PATH") or "/etc/ssl/certs/ca-certificates.crt"
    if "PIP_CERT" not in env and os.path.isfile(bundle):
        env["PIP_CERT"] = bundle
    return env


def ensure_installed() -> Path:
    """The python of a venv with BuildGrid VERSION, installed from PyPI the first time."""
    venv = cache_root() / f"buildgrid-{VERSION}"
    python = venv / "bin" / "python"
    if (venv / "installed").is_file():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    # NB: built beside its final place and renamed, so an interrupted install is never used.
    # The venv's console scripts would name the staging path; BuildGrid runs through its
    # python (`-c BGD`), which finds the venv by its own location.
    staging = Path(tempfile.mkdtemp(prefix=f".buildgrid-{VERSION}-", dir=venv.parent))
    try:
        venv_made = subprocess.run([_python311(), "-m", "venv", str(staging)], capture_output=True, text=True)
        if venv_made.returncode != 0:
            raise BuildGridUnavailable(f"python3.11 -m venv failed: {venv_made.stderr.strip()[-500:]}")
        pins = staging / "pins.txt"
        pins.write_text("\n".join(PINS) + "\n")
        try:
            proc = subprocess.run(
                [
                    str(staging / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    f"buildgrid=={VERSION}",
                    "-c",
                    str(pins),
                ],
                env=_pip_env(),
                capture_output=True,
                text=True,
                timeout=900,
            )
        except subprocess.TimeoutExpired:
            raise BuildGridUnavailable(
                f"pip install buildgrid=={VERSION} took over 15 minutes (is PyPI reachable?)"
            ) from None
        if proc.returncode != 0:
            raise BuildGridUnavailable(
                f"pip could not install buildgrid=={VERSION} (is PyPI reachable?): {proc.stderr.strip()[-1500:]}"
            )
        (staging / "installed").write_text(f"buildgrid=={VERSION}\n")
        try:
            staging.rename(venv)
        except OSError:  # NB: another process finished first; use its venv.
            shutil.rmtree(staging, ignore_errors=True)
            if not (venv / "installed").is_file():
                raise BuildGridUnavailable(
                    f"{venv} is in the way and holds no finished install. Fix: remove it."
                ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return python


BGD = "import sys; from buildgrid.server.app import cli; sys.argv[0] = 'bgd'; cli()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Server:
    """A running BuildGrid; `address` and `instance` are what Pants' remote cache options take."""

    process: subprocess.Popen
    port: int
    workdir: Path

    @property
    def address(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    instance: str = INSTANCE

    @property
    def cas_dir(self) -> Path:
        return self.workdir / "cas"

    @property
    def log(self) -> str:
        return (self.workdir / "bgd.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(workdir: Path, python: Optional[Path] = None, timeout: float = 120.0) -> Server:
    """Start BuildGrid on a free loopback port, storing its CAS under `workdir`; stop() it after."""
    python = python or ensure_installed()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "bgd.yml"
    config.write_text(CONFIG.format(port=port, cas=workdir / "cas", instance=INSTANCE))
    log = open(workdir / "bgd.log", "wb")
    process = subprocess.Popen(
        [str(python), "-c", BGD, "server", "start", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=workdir,
    )
    log.close()
    server = Server(process, port, workdir)
    deadline = time.monotonic() + timeout
    while not _listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise BuildGridUnavailable(f"BuildGrid did not start on 127.0.0.1:{port}; its log:\n{server.log[-2000:]}")
        time.sleep(0.5)
    return server
