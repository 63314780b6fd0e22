"""`run_image`: run an OCI image's `train` on the pipeline's local data, like SageMaker would.

    check bwrap -> load and validate config, overrides, channels and the image
    -> rootfs from the cache -> resolve `train` -> prepare_run (staged /opt/ml)
    -> bwrap, streaming output -> finish_run(succeeded=exit code 0) -> RunOutcome

NB: everything that can be wrong with the input is checked before prepare_run, so a typo
or a broken image leaves no run directory behind; only a run that started gets one
(`<id>` on success, `<id>.failed` otherwise, with `output/failure`).
"""

from __future__ import annotations

import codecs
import collections
import posixpath
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional, TextIO

from mlbuild.oci.layout import read_layout
from mlbuild.runtime import contract, hyperparameters
from mlbuild.runtime.config import PipelineConfig, load_config
from mlbuild.runtime.local_run import finish_run, local_channel_dirs, prepare_run
from mlbuild.container_run.bwrap_probe import check_bwrap
from mlbuild.container_run.command import docker_argv, resolve_command
from mlbuild.container_run.outcome import RunOutcome, read_outcome
from mlbuild.container_run.rootfs_cache import DEFAULT_KEEP, RootfsCache
from mlbuild.container_run.rootfs_view import make_dirs
from mlbuild.container_run.sandbox import MOUNT_POINTS, SandboxSpec, bwrap_argv, container_env

TAIL_LINES = 20


def run_image(
    layout_dir: Path,
    ref: Optional[str],
    config_path: Path,
    address: str,
    data_dir: Path,
    runs_dir: Path,
    overrides: Mapping[str, str],
    cache_dir: Optional[Path] = None,
    stream: TextIO = sys.stdout,
    *,
    network: bool = False,
    keep: int = DEFAULT_KEEP,
) -> RunOutcome:
    bwrap = check_bwrap()
    config = load_config(Path(config_path))
    hyperparameters.resolve(config, overrides, "command line")
    channels = local_channel_dirs(config, Path(data_dir))
    image = read_layout(Path(layout_dir), ref)
    env = container_env(image.env())
    workdir = posixpath.normpath(posixpath.join("/", image.runtime_config.get("WorkingDir") or "/"))
    argv = docker_argv(image.runtime_config)

    cache = RootfsCache(cache_dir, keep)
    with cache.use(image, prepare=lambda root: prepare_rootfs(root, workdir)) as rootfs:
        how = "reused" if rootfs.reused else "unpacked"
        _say(stream, f"rootfs {rootfs.key[:12]} {how} in {rootfs.seconds:.2f}s: {rootfs.path}")
        command = resolve_command(rootfs.path, argv, env.get("PATH"), workdir)
        staging = prepare_run(config, address, Path(data_dir), Path(runs_dir), overrides, link_channels=False)
        try:
            make_sagemaker_dirs(staging, config)
            spec = SandboxSpec(rootfs.path.resolve(), staging.resolve(), tuple(command), env, workdir, channels, network)
            _say(stream, f"running {command} in {staging}")
            exit_code, tail = stream_process(bwrap_argv(spec, bwrap), stream)
            link_channels(staging, channels)
        except BaseException:
            finish_run(staging, succeeded=False)
            raise
    run_dir = finish_run(staging, succeeded=exit_code == 0)
    return read_outcome(run_dir, exit_code, tail)


def link_channels(staging: Path, channels: Mapping[str, Path]) -> None:
    """After the run, swap the empty mount points for links to the data, as a local run has.

    NB: so a container run's directory describes its inputs like any other run (and its
    lineage record checksums the data, not an empty mount point).
    """
    for name, path in channels.items():
        mount_point = staging / contract.DATA_DIR / name
        if mount_point.is_dir() and not mount_point.is_symlink() and not any(mount_point.iterdir()):
            mount_point.rmdir()
            mount_point.symlink_to(Path(path).resolve(), target_is_directory=True)


def make_sagemaker_dirs(staging: Path, config: PipelineConfig) -> None:
    """The output directories SageMaker creates before `train` starts (prepare_run lays out only inputs).

    NB: `train` programs write /opt/ml/output/failure or /opt/ml/model/x without a mkdir,
    because on SageMaker those directories always exist; /opt/ml/checkpoints only with a
    checkpoint config. https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html
    """
    dirs = [contract.MODEL_DIR, contract.OUTPUT_DATA_DIR]
    if config.sagemaker.checkpoint_s3_uri:
        dirs.append(contract.CHECKPOINTS_DIR)
    for rel in dirs:
        (staging / rel).mkdir(parents=True, exist_ok=True)


def prepare_rootfs(rootfs: Path, workdir: str) -> None:
    """Mount points for the read-only root, and the WorkingDir (Docker creates it if missing)."""
    for path in (*MOUNT_POINTS, workdir):
        make_dirs(rootfs, path)


def stream_process(argv: list[str], stream: TextIO) -> tuple[int, list[str]]:
    """Run `argv`, copying its stdout and stderr (merged, like a job's log) to `stream` as they come."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    partial = ""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        # NB: read1 returns whatever is available, so progress bars (`\r`) show up live.
        while chunk := proc.stdout.read1(65536):  # type: ignore[attr-defined]
            text = decoder.decode(chunk)
            stream.write(text)
            stream.flush()
            *lines, partial = (partial + text).split("\n")
            tail.extend(lines)
            partial = partial[-4096:]  # NB: a `\r` progress bar never ends its line.
        proc.wait()
    except BaseException:
        proc.kill()  # NB: --die-with-parent then takes the container down with bwrap.
        proc.wait()
        raise
    finally:
        proc.stdout.close()
    tail.append(partial + decoder.decode(b"", final=True))
    return proc.returncode, list(tail)


def _say(stream: TextIO, message: str) -> None:
    stream.write(f"mlbuild: {message}\n")
    stream.flush()
