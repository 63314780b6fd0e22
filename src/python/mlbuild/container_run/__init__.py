"""Run an OCI image locally exactly like SageMaker's `docker run IMAGE train`, with no Docker.

Plain Python (never imports Pants). The image is unpacked once into a cache, then run
under bubblewrap with a read-only root and an /opt/ml laid out from the pipeline's local
data and config (mlbuild.runtime.local_run).

    from mlbuild.container_run import RunPlan, run_image
    outcome = run_image(RunPlan(layout_dir, ref, load_config(path), address, data_dir, runs_dir, overrides))

    errors.py        ImageCommandError, RootfsError (user), SandboxUnavailableError (platform)
    rootfs_view.py   host-side path lookups inside a rootfs that never leave it
    command.py       Docker's Entrypoint/Cmd rule, PATH lookup, `#!` interpreter check
    sandbox.py       SandboxSpec -> bwrap argv (pure), the container's environment
    bwrap_probe.py   is bwrap installed and able to create namespaces?
    rootfs_cache.py  <cache>/rootfs/<manifest digest hex>, atomic, LRU-evicted, flock-guarded
    outcome.py       RunOutcome: run dir, exit code, failure reason, metrics
    gpu.py           NVIDIA device nodes and driver libraries for the sandbox
    host_network.py  the hosts' addresses, /etc/hosts, loopback addresses via rtnetlink
    multi_host.py    a job on N hosts: per-host /opt/ml, shares, merged model, failure naming the host
    host_group.py    runs inside the job's network namespace: starts the hosts, one prefixed log
    runner.py        run_image: the steps, in order
    cli.py           `python -m mlbuild.container_run`
    serve.py         `docker run IMAGE serve`: the image's serve in the sandbox, on loopback
    serve_cli.py     `pants run --mlbuild-serve`: which model, serve or batch transform, the predict record
"""

from mlbuild.container_run.outcome import RunOutcome
from mlbuild.container_run.rootfs_cache import RootfsCache, default_cache_dir
from mlbuild.container_run.runner import RunPlan, run_image
from mlbuild.container_run.sandbox import SandboxSpec, bwrap_argv, container_env

__all__ = [
    "RootfsCache",
    "RunOutcome",
    "RunPlan",
    "SandboxSpec",
    "bwrap_argv",
    "container_env",
    "default_cache_dir",
    "run_image",
]
