"""A local multi-host job: N sandboxes started together, as SageMaker starts `instance_count` instances.

    <run id>/                          the job: input/config (the leader's view), input/data links,
                                       model/ (merged), output/train.log (every host, prefixed),
                                       output/failure (naming the host), output/hosts.json
    <run id>/hosts/algo-N/             host N's own /opt/ml: input/config/resourceconfig.json
                                       (current_host algo-N), its channel shares, model/, output/

Each host sees only its share of a `ShardedByS3Key` channel (mlbuild.runtime.sharding), every
file of a `FullyReplicated` one, and the job's checkpoint folder at /opt/ml/checkpoints. The
sandboxes share one loopback-only network (host_network.py); host_group.py runs them.

Model output, as SageMaker: every host's /opt/ml/model goes into the one model.tar.gz. Here
the job's `model/` is the hosts' model folders merged, in host order; two hosts writing the
same file with different bytes fail the job (SageMaker would keep one of them, unpredictably).
`metrics.json` is the leader's (each host's stays in its own folder).
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from mlbuild.container_run import host_group  # NB: run as `python -m`; imported so it ships with this module
from mlbuild.container_run.host_network import MAX_HOSTS, host_address, hosts_file
from mlbuild.container_run.sandbox import SandboxSpec
from mlbuild.names import HOSTS_RECORD
from mlbuild.runtime import contract, sharding
from mlbuild.runtime.config import PipelineConfig
from mlbuild.runtime.local_run import LOCAL_INSTANCE_TYPE

HOSTS_DIR = "hosts"
GROUP_SPEC = ".host-group.json"
GROUP_RESULTS = ".host-group-results.json"
HOSTS_FILE = ".etc-hosts"
_COPIED_CONFIG = (contract.HYPERPARAMETERS_FILE, contract.INPUT_DATA_CONFIG_FILE, contract.CHECKPOINT_CONFIG_FILE)


@dataclass(frozen=True)
class HostPlan:
    index: int
    name: str
    address: str
    shares: Mapping[str, tuple[str, ...]]  # channel -> the keys (paths in the channel) this host gets

    def ml_dir(self, job_dir: Path) -> Path:
        return job_dir / HOSTS_DIR / self.name


def check_instance_count(count: int, source: str) -> None:
    from mlbuild.runtime.errors import UserError

    if not 1 <= count <= MAX_HOSTS:
        raise UserError(
            f"{source}: instance count {count}: the local runner starts 1 to {MAX_HOSTS} hosts. "
            f"Fix: pass --instance-count between 1 and {MAX_HOSTS} (SageMaker itself takes more)."
        )


def plan_hosts(config: PipelineConfig, channels: Mapping[str, Path], count: int) -> list[HostPlan]:
    """Every host's channel shares; a sharded channel with fewer files than hosts is a DataError."""
    by_channel = {
        c.name: sharding.plan_shards(c.name, channels[c.name], c.distribution, count, config.source)
        for c in config.channels
    }
    return [
        HostPlan(i, contract.host_name(i), host_address(i), {name: tuple(plan[i]) for name, plan in by_channel.items()})
        for i in range(count)
    ]


def sharded_channels(config: PipelineConfig) -> set[str]:
    return {c.name for c in config.channels if c.distribution == sharding.SHARDED_BY_S3_KEY}


def lay_out_host(job_dir: Path, plan: HostPlan, hosts: Sequence[str], config: PipelineConfig) -> Path:
    """Host `plan`'s /opt/ml under the job: the job's config files, its own resourceconfig.json,
    mount points for its channels (an empty stand-in per file of a sharded share)."""
    ml_dir = plan.ml_dir(job_dir)
    for rel in _COPIED_CONFIG:
        if (job_dir / rel).exists():
            (ml_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(job_dir / rel, ml_dir / rel)
    resource = contract.resource_config(plan.name, list(hosts), LOCAL_INSTANCE_TYPE)
    (ml_dir / contract.RESOURCE_CONFIG_FILE).write_text(json.dumps(resource, indent=2, sort_keys=True) + "\n")
    sharded = sharded_channels(config)
    for channel in config.channels:
        folder = ml_dir / contract.DATA_DIR / channel.name
        folder.mkdir(parents=True, exist_ok=True)
        if channel.name in sharded:
            for key in plan.shares[channel.name]:
                (folder / key).parent.mkdir(parents=True, exist_ok=True)
                (folder / key).touch()
    dirs = [contract.MODEL_DIR, contract.OUTPUT_DATA_DIR]
    if config.sagemaker.checkpoint_s3_uri:
        dirs.append(contract.CHECKPOINTS_DIR)
    for rel in dirs:
        (ml_dir / rel).mkdir(parents=True, exist_ok=True)
    return ml_dir


def host_sandbox(
    base: SandboxSpec, job_dir: Path, plan: HostPlan, config: PipelineConfig, channels: Mapping[str, Path]
) -> SandboxSpec:
    """The host's sandbox: its own /opt/ml and hostname, the job's network and /etc/hosts."""
    sharded = sharded_channels(config)
    env = dict(base.env)
    env["HOSTNAME"] = plan.name
    return SandboxSpec(
        rootfs=base.rootfs,
        ml_dir=plan.ml_dir(job_dir).resolve(),
        command=base.command,
        env=env,
        workdir=base.workdir,
        channels={name: path for name, path in channels.items() if name not in sharded},
        network=True,  # NB: the job's own namespace (loopback only), not the host's: see outer_argv
        hostname=plan.name,
        channel_files={
            name: [(key, Path(channels[name]) / key) for key in plan.shares[name]] for name in sorted(sharded)
        },
        checkpoints=base.checkpoints,
        hosts_file=(job_dir / HOSTS_FILE).resolve(),
        gpus=base.gpus,
    )


def write_hosts_file(job_dir: Path, count: int) -> Path:
    path = job_dir / HOSTS_FILE
    path.write_text(hosts_file(count))
    return path


def outer_argv(bwrap: str, spec_path: Path) -> list[str]:
    """The bwrap that makes the job's network namespace (loopback only) and runs host_group in it.

    NB: it maps the user to root in a new user namespace with CAP_NET_ADMIN, which only lets it
    add addresses to that namespace's own loopback; the hosts' bwraps inside it drop it again.
    """
    pythonpath = os.pathsep.join(p for p in sys.path if p)
    return [
        bwrap,
        "--dev-bind",
        "/",
        "/",
        "--unshare-user",
        "--unshare-net",
        "--uid",
        "0",
        "--gid",
        "0",
        "--cap-add",
        "CAP_NET_ADMIN",
        "--die-with-parent",
        "--setenv",
        "PYTHONPATH",
        pythonpath,
        "--",
        sys.executable,
        "-m",
        host_group.__name__,
        str(spec_path),
    ]


def write_group_spec(job_dir: Path, plans: Sequence[HostPlan], argvs: Sequence[list[str]]) -> Path:
    spec = {
        "hosts": [{"name": p.name, "address": p.address, "argv": argv} for p, argv in zip(plans, argvs)],
        "results": str((job_dir / GROUP_RESULTS).resolve()),
    }
    path = job_dir / GROUP_SPEC
    path.write_text(json.dumps(spec))
    return path


def read_results(job_dir: Path) -> Optional[dict[str, Any]]:
    try:
        return json.loads((job_dir / GROUP_RESULTS).read_text())
    except (OSError, ValueError):
        return None


def host_failure(
    job_dir: Path,
    plans: Sequence[HostPlan],
    results: Optional[Mapping[str, Any]],
    group_exit: int,
    tail: Sequence[str] = (),
) -> Optional[tuple[int, str]]:
    """(exit code, FailureReason) of the job, naming the first host that failed; None if all succeeded."""
    if results is None:
        # NB: e.g. a setuid bwrap refuses --cap-add for non-root users ("bwrap: ..."), or a kill.
        last = next((line.strip() for line in reversed(tail) if line.strip()), "")
        said = f" Its last output line: {last!r}." if last else ""
        return (
            group_exit if group_exit > 0 else 1,
            f"the multi-host runner (a bwrap with its own network namespace) exited with {group_exit} before the "
            f"hosts reported.{said} Fix: bubblewrap must be able to create user and network namespaces "
            f"(not setuid), or run with --instance-count 1.",
        )
    failed = [
        p for p in plans if results.get(p.name, {}).get("exit_code") not in (0,) and not results[p.name].get("stopped")
    ]
    if not failed:
        stopped = [p.name for p in plans if results.get(p.name, {}).get("stopped")]
        if stopped:
            return (1, f"hosts {', '.join(stopped)} were stopped before they finished.")
        return None
    host = failed[0]
    code = results[host.name]["exit_code"]
    try:
        reason = (host.ml_dir(job_dir) / contract.FAILURE_FILE).read_text(errors="replace").strip()
    except OSError:
        reason = ""
    stopped = [p.name for p in plans if results.get(p.name, {}).get("stopped")]
    also = (
        f" The other hosts ({', '.join(stopped)}) were stopped, as SageMaker stops a job when one host fails."
        if stopped
        else ""
    )
    detail = f": {reason}" if reason else f" without writing /opt/ml/{contract.FAILURE_FILE}"
    return (code if code and code > 0 else 1, f"host {host.name} failed (exit code {code}){detail}.{also}")


def merge_models(job_dir: Path, plans: Sequence[HostPlan]) -> Optional[str]:
    """Merge the hosts' model folders into the job's `model/`; a conflict's description, or None."""
    target = job_dir / contract.MODEL_DIR
    target.mkdir(parents=True, exist_ok=True)
    owner: dict[str, str] = {}
    metrics = Path(contract.METRICS_FILE).name
    for plan in plans:
        source = plan.ml_dir(job_dir) / contract.MODEL_DIR
        for root, dirs, files in os.walk(source):
            dirs.sort()
            for name in sorted(files):
                src = Path(root) / name
                rel = src.relative_to(source).as_posix()
                if rel == metrics and plan.index != 0:
                    continue
                dest = target / rel
                if rel in owner:
                    if not filecmp.cmp(src, dest, shallow=False):
                        return (
                            f"hosts {owner[rel]} and {plan.name} both wrote /opt/ml/model/{rel} with different bytes; "
                            f"SageMaker would keep one of them at random. Fix: write the model on the leader only "
                            f"(`if ctx.is_leader:`), or give each host's files its own name."
                        )
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
                owner[rel] = plan.name
    return None


def write_hosts_record(job_dir: Path, plans: Sequence[HostPlan], config: PipelineConfig) -> None:
    """`output/hosts.json`: the instance count and each host's data shares, for the report and lineage."""
    record = {
        "instance_count": len(plans),
        "hosts": [
            {
                "host": p.name,
                "address": p.address,
                "leader": p.index == 0,
                "channels": {
                    c.name: {"distribution": c.distribution, "keys": list(p.shares[c.name])} for c in config.channels
                },
            }
            for p in plans
        ],
    }
    path = job_dir / HOSTS_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def clean_up_hosts(job_dir: Path) -> None:
    """After the run: the hosts' channel stand-ins and the group's scratch files go; configs, models and logs stay."""
    for name in (GROUP_SPEC, GROUP_RESULTS, HOSTS_FILE):
        (job_dir / name).unlink(missing_ok=True)
    for host_dir in sorted((job_dir / HOSTS_DIR).glob(f"{contract.HOST_PREFIX}*")):
        shutil.rmtree(host_dir / contract.DATA_DIR, ignore_errors=True)
        checkpoints = host_dir / contract.CHECKPOINTS_DIR
        if checkpoints.is_dir() and not any(checkpoints.iterdir()):
            checkpoints.rmdir()  # NB: a mount point during the run; the checkpoints are in the job's store
