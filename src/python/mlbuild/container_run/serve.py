"""Serve an OCI image's model in the bubblewrap sandbox, as `docker run IMAGE serve` would, on loopback.

    rootfs from the container runner's cache -> resolve `serve` on the image's PATH
    -> a staged /opt/ml with the model copied into model/ -> bwrap (host network shared)
    -> `serve --bind 127.0.0.1:0 --port-file /opt/ml/output/serve.port` -> wait for the port

The image's own `serve` runs exactly as SageMaker starts it, with two arguments added so the
server listens on loopback only, on a port it picks itself (no race for a free port): the
sandbox shares the host's network, and 0.0.0.0:8080 would expose the model to the network.
Everything else is the container runner's (`mlbuild.container_run`): the same rootfs cache,
read-only root, environment and PATH lookup as `train`.
"""

from __future__ import annotations

import posixpath
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from mlbuild.container_run.bwrap_probe import check_bwrap
from mlbuild.container_run.command import docker_argv, resolve_command
from mlbuild.container_run.rootfs_cache import DEFAULT_KEEP, RootfsCache
from mlbuild.container_run.runner import prepare_rootfs
from mlbuild.container_run.sandbox import ML_DIR, SandboxSpec, bwrap_argv, container_env
from mlbuild.oci.layout import read_layout
from mlbuild.runtime import contract
from mlbuild.serving.local_server import STARTUP_SECONDS, stop, wait_until_ready
from mlbuild.serving.model_source import ModelSourceError, unpack_model_archive

SERVE = "serve"
PORT_FILE = f"{contract.OUTPUT_DIR}/serve.port"


def serve_args(workers: int) -> tuple:
    """`serve` and the arguments that keep it on loopback and make it report its port."""
    return (SERVE, "--bind", "127.0.0.1:0", "--port-file", posixpath.join(ML_DIR, PORT_FILE), "--workers", str(workers))


def stage_model(model: Path, staging: Path) -> None:
    """/opt/ml as SageMaker lays it out for hosting: the model (a folder or model.tar.gz) in model/."""
    if Path(model).is_dir():
        shutil.copytree(model, staging / contract.MODEL_DIR, symlinks=False)
    elif Path(model).is_file():
        unpack_model_archive(Path(model), staging / contract.MODEL_DIR)
    else:
        raise ModelSourceError(
            f"{model}: no such model folder or model.tar.gz. Fix: name a run's model/ folder or a job's output/model.tar.gz."
        )
    (staging / contract.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)


@contextmanager
def serve_image(
    layout_dir: Path,
    ref: Optional[str],
    model: Path,
    *,
    workers: int = 1,
    cache_dir: Optional[Path] = None,
    keep: int = DEFAULT_KEEP,
    log_path: Optional[Path] = None,
    startup_seconds: float = STARTUP_SECONDS,
) -> Iterator[str]:
    """Yields `http://127.0.0.1:PORT` of the image's `serve` for `model` (folder or model.tar.gz) in the sandbox; stops it after."""
    bwrap = check_bwrap()
    image = read_layout(Path(layout_dir), ref)
    env = container_env(image.env())
    workdir = posixpath.normpath(posixpath.join("/", image.runtime_config.get("WorkingDir") or "/"))
    argv = docker_argv(image.runtime_config, serve_args(workers))
    with tempfile.TemporaryDirectory(prefix="mlbuild-serve-ml-") as work:
        staging = Path(work) / "ml"
        stage_model(Path(model), staging)
        log_path = log_path or Path(work) / "serve.log"
        with RootfsCache(cache_dir, keep).use(image, prepare=lambda root: prepare_rootfs(root, workdir)) as rootfs:
            command = resolve_command(rootfs.path, argv, env.get("PATH"), workdir, verb=SERVE)
            spec = SandboxSpec(rootfs.path.resolve(), staging.resolve(), tuple(command), env, workdir, {}, network=True)
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    bwrap_argv(spec, bwrap), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            try:
                yield wait_until_ready(staging / PORT_FILE, proc, log_path, startup_seconds)
            finally:
                stop(proc)
