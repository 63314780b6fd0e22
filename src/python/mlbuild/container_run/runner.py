"""`run_image`: run an OCI image's `train` on the pipeline's local data, like SageMaker would.

    check bwrap -> validate the plan's config, overrides, channels and the image
    -> rootfs from the cache -> resolve `train` -> prepare_run (staged /opt/ml)
    -> bwrap, streaming output -> finish_run(succeeded=exit code 0) -> RunOutcome
    (N > 1 hosts: multi_host.py lays out a /opt/ml per host and host_group.py runs them together)

NB: everything that can be wrong with the input is checked before prepare_run, so a typo
or a broken image leaves no run directory behind; only a run that started gets one
(`<id>` on success, `<id>.failed` otherwise, with `output/failure`).
"""

from __future__ import annotations

import codecs
import collections
import dataclasses
import posixpath
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional, Protocol, Sequence, TextIO

from mlbuild import console
from mlbuild.container_run import gpu, multi_host
from mlbuild.container_run.bwrap_probe import check_bwrap, check_host_network
from mlbuild.container_run.command import docker_argv, resolve_command
from mlbuild.container_run.outcome import RunOutcome, read_outcome
from mlbuild.container_run.rootfs_cache import DEFAULT_KEEP, RootfsCache
from mlbuild.container_run.rootfs_view import make_dirs, make_file
from mlbuild.container_run.sandbox import FILE_MOUNT_POINTS, MOUNT_POINTS, SandboxSpec, bwrap_argv, container_env
from mlbuild.oci.layout import read_layout
from mlbuild.runtime import contract, hyperparameters
from mlbuild.runtime.config import PipelineConfig
from mlbuild.runtime.local_run import checkpoints_store, finish_run, job_key, local_channel_dirs, prepare_run

TAIL_LINES = 20


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What `run_image` runs: an image from a layout, the parsed config, the data and where runs go.

    `instance_count` defaults to the config's `sagemaker.instance_count`. GPUs: `gpu_binds` when
    given (tests pass a fake /dev's), else what `gpu.discover()` finds on this host, unless
    `use_gpus` is False. `environment`: a job's `Environment` (CreateTrainingJob), set over the
    image's own, as SageMaker sets it.
    """

    layout_dir: Path
    ref: Optional[str]
    config: PipelineConfig
    address: str
    data_dir: Path
    runs_dir: Path
    overrides: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cache_dir: Optional[Path] = None
    network: bool = False
    keep: int = DEFAULT_KEEP
    instance_count: Optional[int] = None
    use_gpus: bool = True
    gpu_binds: Optional[gpu.GpuBinds] = None
    environment: Optional[Mapping[str, str]] = None


def run_image(plan: RunPlan, stream: TextIO = sys.stdout) -> RunOutcome:
    """Run the image's `train` on the plan's hosts, streaming its output to `stream`."""
    config, instance_count = plan.config, plan.instance_count
    bwrap = check_bwrap()
    values = hyperparameters.resolve(config, plan.overrides, "command line")
    channels = local_channel_dirs(config, Path(plan.data_dir))
    count = config.sagemaker.instance_count if instance_count is None else instance_count
    multi_host.check_instance_count(
        count, "--instance-count" if instance_count is not None else f"{config.source}: `sagemaker.instance_count`"
    )
    plans = (
        multi_host.plan_hosts(config, channels, count) if count > 1 else []
    )  # NB: sharding errors before any run dir
    if count > 1:
        check_host_network(bwrap)
    gpus = (plan.gpu_binds or gpu.discover()) if plan.use_gpus else gpu.GpuBinds((), ())
    image = read_layout(Path(plan.layout_dir), plan.ref)
    env = {**container_env(image.env()), **dict(plan.environment or {}), **gpus.env(image.env())}
    workdir = posixpath.normpath(posixpath.join("/", image.runtime_config.get("WorkingDir") or "/"))
    argv = docker_argv(image.runtime_config)

    cache = RootfsCache(plan.cache_dir, plan.keep)
    with cache.use(image, prepare=lambda root: prepare_rootfs(root, workdir)) as rootfs:
        how = "reused" if rootfs.reused else "unpacked"
        console.say(f"rootfs {rootfs.key[:12]} {how} in {rootfs.seconds:.2f}s: {rootfs.path}", stream)
        command = resolve_command(rootfs.path, argv, env.get("PATH"), workdir)
        prepare_optional_mounts(rootfs.path, gpus=bool(gpus.devices))
        if gpus.devices:
            console.say(
                f"GPUs: {gpus.gpu_count} ({', '.join(gpus.devices)}); driver libraries: {len(gpus.libraries)}", stream
            )
        staging = prepare_run(
            config, plan.address, Path(plan.data_dir), Path(plan.runs_dir), plan.overrides, link_channels=False
        )
        key = job_key(hyperparameters.encode(values))
        store = checkpoints_store(staging.parent, key, count) if config.sagemaker.checkpoint_s3_uri else None
        try:
            make_sagemaker_dirs(staging, config)
            spec = SandboxSpec(
                rootfs.path.resolve(),
                staging.resolve(),
                tuple(command),
                env,
                workdir,
                channels,
                plan.network,
                checkpoints=store.resolve() if store else None,
                gpus=gpus,
            )
            if count == 1:
                # NB: algo-1 resolves on a one-instance SageMaker job too (frameworks look themselves up).
                hosts_file = multi_host.write_hosts_file(staging, 1)
                spec = dataclasses.replace(spec, hosts_file=hosts_file.resolve())
                console.say(f"running {command} in {staging}", stream)
                exit_code, tail = stream_process(bwrap_argv(spec, bwrap), stream)
                hosts_file.unlink()
            else:
                exit_code, tail = run_hosts(staging, spec, plans, config, channels, bwrap, stream)
            link_channels(staging, channels)
            if store is not None:
                link_checkpoints(staging, store)
        except BaseException:
            finish_run(staging, succeeded=False)
            raise
    run_dir = finish_run(staging, succeeded=exit_code == 0)
    return read_outcome(run_dir, exit_code, tail)


def run_hosts(
    staging: Path,
    spec: SandboxSpec,
    plans: Sequence[multi_host.HostPlan],
    config: PipelineConfig,
    channels: Mapping[str, Path],
    bwrap: str,
    stream: TextIO,
) -> tuple[int, list[str]]:
    """The hosts' sandboxes, started together in one loopback-only network; the job's exit code and log tail."""
    hosts = [p.name for p in plans]
    argvs = []
    for plan in plans:
        multi_host.lay_out_host(staging, plan, hosts, config)
        argvs.append(bwrap_argv(multi_host.host_sandbox(spec, staging, plan, config, channels), bwrap))
    # NB: the job folder describes the job as its leader sees it (all hosts, `current_host` algo-1).
    leader_config = plans[0].ml_dir(staging) / contract.RESOURCE_CONFIG_FILE
    (staging / contract.RESOURCE_CONFIG_FILE).write_bytes(leader_config.read_bytes())
    multi_host.write_hosts_file(staging, len(plans))
    multi_host.write_hosts_record(staging, plans, config)
    group = multi_host.write_group_spec(staging, plans, argvs)
    shares = "; ".join(
        f"{p.name}: " + ", ".join(f"{name} {len(keys)} file(s)" for name, keys in sorted(p.shares.items()))
        for p in plans
    )
    console.say(f"running {spec.command} on {len(plans)} hosts ({shares}) in {staging}", stream)
    log_path = staging / contract.LOG_FILE
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8", errors="replace") as log:
        group_exit, tail = stream_process(multi_host.outer_argv(bwrap, group), _Tee(stream, log))
    failure = multi_host.host_failure(staging, plans, multi_host.read_results(staging), group_exit, tail)
    if failure is None:
        conflict = multi_host.merge_models(staging, plans)
        if conflict:
            failure = (1, conflict)
    else:
        multi_host.merge_models(staging, plans)  # NB: what the hosts wrote before failing, for a look
    multi_host.clean_up_hosts(staging)
    if failure is not None:
        contract.write_failure(staging, failure[1])
        return failure[0], tail
    return 0, tail


class Writer(Protocol):
    """Where a job's output goes: a console stream, or _Tee (the console plus the log file)."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class _Tee:
    """The console stream plus the job's combined log file."""

    def __init__(self, console: TextIO, file: TextIO) -> None:
        self._console, self._file = console, file

    def write(self, text: str) -> int:
        self._file.write(text)
        return self._console.write(text)

    def flush(self) -> None:
        self._file.flush()
        self._console.flush()


def link_checkpoints(staging: Path, store: Path) -> None:
    """After the run, the empty mount point becomes a link to the job's checkpoint store, as in a local run."""
    mount_point = staging / contract.CHECKPOINTS_DIR
    if mount_point.is_dir() and not mount_point.is_symlink() and not any(mount_point.iterdir()):
        mount_point.rmdir()
        mount_point.symlink_to(store.resolve(), target_is_directory=True)


def prepare_optional_mounts(rootfs: Path, *, gpus: bool) -> None:
    """Mount points made in the (shared, read-only at run time) rootfs when missing, idempotent:
    /etc/hosts (a rootfs cached before it was a mount point lacks it), /usr/local/nvidia with GPUs."""
    for path in FILE_MOUNT_POINTS:
        make_file(rootfs, path)
    if gpus:
        make_dirs(rootfs, gpu.MOUNT_POINT)


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
    for path in FILE_MOUNT_POINTS:
        make_file(rootfs, path)


def stream_process(argv: list[str], stream: Writer) -> tuple[int, list[str]]:
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
