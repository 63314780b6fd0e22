"""`pants run` for ml_pipeline: the current sources on a cached requirements venv."""

from __future__ import annotations

import os
import subprocess

from pants.core.goals.run import RunRequest
from pants.testutil.rule_runner import RuleRunner

from mlbuild_pants.conftest import pipeline_field_set


def test_run_trains_the_current_sources_on_a_cached_requirements_venv(rule_runner: RuleRunner) -> None:
    request = rule_runner.request(RunRequest, [pipeline_field_set(rule_runner)])
    assert request.args[0].startswith("{chroot}/") and "mlbuild_requirements.pex" in request.args[0]
    assert request.args[1:6] == ("local", "--data-dir", "src/pipez/toy/sample", "--runs-dir", "dist/mlbuild/runs")
    pins = dict(zip(request.args[6::2], request.args[7::2]))
    assert list(pins) == ["--sources-sha256", "--requirements-sha256"] and all(len(v) == 64 for v in pins.values())
    env = request.extra_env
    # The repo's source root first (errors name the files the user edits), then the chroot's copy.
    assert env["PEX_EXTRA_SYS_PATH"] == "src:{chroot}/src"
    assert (env["MLBUILD_PIPELINE_MODULE"], env["MLBUILD_PIPELINE_CONFIG"], env["MLBUILD_PIPELINE_ADDRESS"]) == (
        "pipez.toy.model", "toy.yaml", "src/pipez/toy:train"
    )
    # Relative to the build root, where `pants run` starts the process: the store and the inbox
    # `package` also writes to.
    assert (env["MLBUILD_LINEAGE_DIR"], env["MLBUILD_LINEAGE_INBOX"]) == (".mlbuild/lineage", "dist/mlbuild/lineage")
    # Run it as `pants run` would: the host side (PEX_MODULE) starts, then the runtime, which
    # reads the module, address and config.
    chroot = os.path.join(rule_runner.build_root, "chroot")
    rule_runner.write_digest(request.digest, path_prefix="chroot")
    argv = [a.replace("{chroot}", chroot) for a in request.args]
    run_env = {k: v.replace("{chroot}", chroot) for k, v in env.items()}
    out = subprocess.run(argv, capture_output=True, text=True, env=run_env, cwd=rule_runner.build_root)
    assert out.returncode == 0, out.stderr
    printed = out.stdout.split()
    assert printed[:3] == ["host-run", "pipez.toy.model", "src/pipez/toy:train"]
    # The config packaged beside the module, then the run's own arguments.
    assert printed[3:8] == ["hyperparameters:", "{depth:", "3}", "local", "--data-dir"]


def test_an_edit_changes_the_sources_pin_and_not_the_requirements_venv(rule_runner: RuleRunner) -> None:
    def pins() -> dict:
        args = rule_runner.request(RunRequest, [pipeline_field_set(rule_runner)]).args
        return dict(zip(args[6::2], args[7::2]))

    before = pins()
    rule_runner.write_files({"src/pipez/toy/helpers.py": "X = 1\n"})
    after = pins()
    assert after["--sources-sha256"] != before["--sources-sha256"]
    assert after["--requirements-sha256"] == before["--requirements-sha256"]
