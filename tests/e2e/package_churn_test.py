"""`./pants package` on the churn pipeline: reproducible PEX and image, layering, and the
image run like SageMaker runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict

import pytest

from e2e.repo import Result, copy_repo, pants, sha256_file

CHURN = "src/python/pipelines/churn:train"
DIST = Path("dist/src.python.pipelines.churn")
RUNS = Path("dist/mlbuild/runs/src.python.pipelines.churn/train")


def package_from_scratch(repo: Path, scratch: Path, seed: str, umask: int) -> Result:
    """A build that shares no cache with any other: fresh named caches, no process cache."""
    (scratch / "tmp").mkdir(parents=True)
    return pants(
        repo,
        "--no-local-cache",
        f"--named-caches-dir={scratch / 'named_caches'}",
        f"--local-execution-root-dir={scratch / 'tmp'}",
        "package",
        CHURN,
        env={"TMPDIR": str(scratch / "tmp"), "PYTHONHASHSEED": seed},
        umask=umask,
        timeout=2400,
    )


def summary(repo: Path) -> Dict:
    return json.loads((repo / DIST / "train.image.json").read_text())


def layer_digests(repo: Path) -> Dict[str, str]:
    return {layer["annotations"]["org.mlbuild.layer.name"]: layer["digest"] for layer in summary(repo)["layers"]}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory):
    first = copy_repo(tmp_path_factory.mktemp("first") / "checkout")
    second = copy_repo(tmp_path_factory.mktemp("second-at-another-path") / "elsewhere" / "checkout")
    a = package_from_scratch(first, tmp_path_factory.mktemp("scratch-a"), seed="1", umask=0o022)
    assert a.exit_code == 0, a.stderr[-4000:]
    time.sleep(3)  # NB: a later clock must not show up in any byte.
    b = package_from_scratch(second, tmp_path_factory.mktemp("scratch-b"), seed="2", umask=0o077)
    assert b.exit_code == 0, b.stderr[-4000:]
    return first, second, a


def test_two_builds_from_scratch_are_byte_identical(builds) -> None:
    first, second, _ = builds
    assert sha256_file(first / DIST / "train.pex") == sha256_file(second / DIST / "train.pex")
    assert summary(first) == summary(second)
    assert sha256_file(first / DIST / "train.oci.tar") == sha256_file(second / DIST / "train.oci.tar")


def test_package_prints_digests_and_labels_lead_back_to_the_inputs(builds) -> None:
    first, _, result = builds
    manifest_digest = summary(first)["manifest_digest"]
    assert f"manifest digest: {manifest_digest}" in result.stderr
    pex_sha = sha256_file(first / DIST / "train.pex")
    assert f"sha256: {pex_sha}" in result.stderr
    index = json.loads((first / DIST / "train.oci" / "index.json").read_text())
    (manifest,) = [m for m in index["manifests"] if "artifactType" not in m]
    (provenance,) = [m for m in index["manifests"] if "artifactType" in m]
    assert provenance["artifactType"] == "application/vnd.in-toto+json"
    assert manifest["digest"] == manifest_digest
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == "train"
    blob = first / DIST / "train.oci" / "blobs" / "sha256" / manifest_digest.split(":")[1]
    annotations = json.loads(blob.read_text())["annotations"]
    assert annotations["org.mlbuild.pex.sha256"] == pex_sha
    assert annotations["org.mlbuild.pipeline.address"] == CHURN
    assert annotations["org.opencontainers.image.base.digest"].startswith("sha256:")
    assert len(annotations["org.mlbuild.lockfile.sha256"]) == 64


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed (apt-get install skopeo)")
def test_skopeo_accepts_the_layout_and_the_archive(builds) -> None:
    first, _, _ = builds
    for transport in (f"oci:{first / DIST / 'train.oci'}:train", f"oci-archive:{first / DIST / 'train.oci.tar'}"):
        out = subprocess.run(["skopeo", "inspect", transport], capture_output=True, text=True, check=True).stdout
        info = json.loads(out)
        assert info["Digest"] == summary(first)["manifest_digest"]
        assert (info["Architecture"], info["Os"]) == ("amd64", "linux")


@pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed (apt-get install umoci)")
def test_umoci_unpacks_the_image_with_train_on_path_and_nothing_under_opt_ml(builds, tmp_path: Path) -> None:
    first, _, _ = builds
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{first / DIST / 'train.oci'}:train", str(bundle)], check=True, capture_output=True)
    rootfs = bundle / "rootfs"
    assert (rootfs / "usr/local/bin/train").stat().st_mode & 0o111
    assert (rootfs / "usr/bin/python3.11").exists()
    assert not (rootfs / "opt/ml").exists() or not any((rootfs / "opt/ml").iterdir())


def test_a_code_only_change_changes_only_the_top_layer(builds) -> None:
    _, second, _ = builds
    before = layer_digests(second)
    pipeline = second / "src/python/pipelines/churn/pipeline.py"
    pipeline.write_text(pipeline.read_text() + "\n# a code-only change\n")
    result = pants(second, "package", CHURN)
    assert result.exit_code == 0, result.stderr[-4000:]
    after = layer_digests(second)
    assert list(after) == list(before) == ["debian", "deps", "app"]
    assert [name for name in after if after[name] != before[name]] == ["app"]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)")
def test_the_image_trains_the_same_model_as_pants_run(builds) -> None:
    first, _, _ = builds
    local = pants(first, "run", CHURN)
    assert local.exit_code == 0, local.stderr[-4000:]
    local_run = (first / RUNS / "latest").resolve()
    contained = pants(first, "run", "--mlbuild-container", CHURN)
    assert contained.exit_code == 0, contained.stderr[-4000:]
    container_run = (first / RUNS / "latest").resolve()
    assert container_run != local_run
    assert "running ['/usr/local/bin/train']" in contained.stdout + contained.stderr
    for name in ("model/model.pkl", "model/metrics.json", "model/features.json"):
        assert sha256_file(container_run / name) == sha256_file(local_run / name), name


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)")
def test_a_failing_pipeline_in_the_image_reports_the_failure_reason(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    pipeline = repo / "src/python/pipelines/churn/pipeline.py"
    pipeline.write_text(pipeline.read_text().replace("def train(ctx, features):\n", "def train(ctx, features):\n    raise ArithmeticError('diverged')\n"))
    result = pants(repo, "run", "--mlbuild-container", CHURN)
    assert result.exit_code != 0
    output = result.stdout + result.stderr
    assert "stage train() raised ArithmeticError: diverged" in output
    (failed,) = (repo / RUNS).glob("*.failed")
    assert "ArithmeticError: diverged" in (failed / "output" / "failure").read_text()
    assert not (repo / RUNS / "latest").exists()
