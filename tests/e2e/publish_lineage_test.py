"""Package, run and publish (local backend) the churn pipeline, then follow any hash back
through the lineage store, as a user would after a clean clone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from e2e.repo import copy_repo, pants, pex_sha256, sha256_file
from mlbuild.registry.local_server import serve_registry
from mlbuild.tools_required import require_tool

CHURN = "src/python/pipelines/churn:train"
DIST = Path("dist/src.python.pipelines.churn")
# NB: a laptop with no AWS set up: publish must pick the local backend by itself.
NO_AWS = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
}

pytestmark = require_tool("bwrap", "bubblewrap")
# README "verify-provenance": exits 7 (mlbuild.names.EXIT_NOT_VERIFIED) when a statement is not about the image.
MISMATCH = 7


def lineage(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """`mlbuild VERB` straight from the copied sources, reading the repo's default store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLBUILD_LINEAGE")}
    env["PYTHONPATH"] = str(repo / "src/python")
    return subprocess.run(
        [sys.executable, "-m", "mlbuild.commands.cli", *args], cwd=repo, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    for args in (["package", CHURN], ["run", CHURN]):
        result = pants(repo, *args, env=NO_AWS)
        assert result.exit_code == 0, result.stderr[-4000:]
    return repo


def image_digest(repo: Path) -> str:
    return json.loads((repo / DIST / "train.image.json").read_text())["manifest_digest"]


def test_inspect_the_image_digest_names_the_pex_and_the_pex_prefix_names_the_image(repo: Path) -> None:
    digest, pex_sha = image_digest(repo), pex_sha256(repo / DIST / "train.pex")
    by_image = pants(repo, "mlbuild", "inspect", digest, "--json")
    assert by_image.exit_code == 0, by_image.stderr[-3000:]
    assert pex_sha in by_image.stdout
    by_pex = lineage(repo, "inspect", pex_sha[:10], "--json")
    assert by_pex.returncode == 0, by_pex.stderr
    assert digest in by_pex.stdout
    assert json.loads(by_pex.stdout)["focus"] == json.loads(by_image.stdout)["focus"]


def test_publish_locally_then_every_hash_leads_to_the_same_lineage(repo: Path) -> None:
    result = pants(repo, "publish", CHURN, env=NO_AWS)
    assert result.exit_code == 0, result.stderr[-4000:]
    report = json.loads((repo / "dist/mlbuild/publish/src.python.pipelines.churn/train/report.json").read_text())
    assert report["backend"] == "local" and report["status"] == "Completed"
    assert report["image_uri"].endswith(image_digest(repo))
    archive = Path(report["model"]["uri"])
    assert archive.name == "model.tar.gz" and sha256_file(archive) == report["model"]["sha256"]
    markdown = (repo / "dist/mlbuild/publish/src.python.pipelines.churn/train/report.md").read_text()
    assert "**Completed**" in markdown and report["job_name"] in markdown

    layer = json.loads((repo / DIST / "train.image.json").read_text())["layers"][-1]["digest"]
    queries: List[str] = [
        image_digest(repo),
        pex_sha256(repo / DIST / "train.pex")[:8],
        report["job_name"],
        report["model"]["sha256"],
        layer,
    ]
    focus_lineages = []
    for query in queries:
        out = lineage(repo, "inspect", query, "--json")
        assert out.returncode == 0, (query, out.stderr)
        tree = json.loads(out.stdout)
        focus_lineages.append(set(tree["records"]))
    # README: any one hash leads to the rest, so every query finds the very same records.
    package_ids = focus_lineages[0]
    assert package_ids
    for query, ids in zip(queries, focus_lineages):
        assert ids == package_ids, (query, sorted(ids ^ package_ids))

    again = pants(repo, "publish", CHURN, env=NO_AWS)
    assert again.exit_code == 0, again.stderr[-4000:]
    assert "reusing it" in again.stderr and "stage train: started" not in again.stdout + again.stderr


def test_runs_table_plot_and_provenance(repo: Path, tmp_path: Path) -> None:
    second = pants(repo, "run", CHURN, "--", "max_depth=2")
    assert second.exit_code == 0, second.stderr[-4000:]
    table = lineage(repo, "runs", CHURN)
    assert table.returncode == 0 and table.stdout.count("validation:auc") >= 1
    runs = json.loads(lineage(repo, "runs", CHURN, "--json").stdout)
    assert len({json.dumps(r.get("hyperparameters"), sort_keys=True) for r in runs}) >= 2
    plot = tmp_path / "auc.png"
    assert lineage(repo, "plot", CHURN, "--metric", "validation:auc", "--output", str(plot)).returncode == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    statement = repo / DIST / "train.provenance.json"
    ok = lineage(repo, "verify-provenance", str(statement), "--digest", image_digest(repo))
    assert ok.returncode == 0, ok.stderr
    tampered = image_digest(repo)[:-1] + ("0" if image_digest(repo)[-1] != "0" else "1")
    bad = lineage(repo, "verify-provenance", str(statement), "--digest", tampered)
    assert bad.returncode == MISMATCH, (bad.returncode, bad.stderr)
    # The same statement is stored in the OCI layout, about the image beside it.
    in_layout = lineage(repo, "verify-provenance", "--image-json", str(repo / DIST / "train.image.json"))
    assert in_layout.returncode == 0 and image_digest(repo) in in_layout.stdout, in_layout.stderr


@require_tool("docker-registry", "docker-registry")
def test_provenance_is_pushed_with_the_image_and_a_fresh_clone_finds_the_lineage(repo: Path, tmp_path: Path) -> None:
    with serve_registry(tmp_path / "registry") as registry:
        result = pants(repo, f"--mlbuild-local-registry={registry.host}/churn", "publish", CHURN, env=NO_AWS)
        assert result.exit_code == 0, result.stderr[-4000:]
        report = json.loads((repo / "dist/mlbuild/publish/src.python.pipelines.churn/train/report.json").read_text())
        pushed = report["image_uri"]
        assert pushed == f"{registry.host}/churn@{image_digest(repo)}"
        # The statement pushed with the image names exactly the pushed digest.
        ok = lineage(repo, "verify-provenance", "--image", pushed)
        assert ok.returncode == 0 and image_digest(repo) in ok.stdout, ok.stderr
        # Another machine, no records at all: the image reference alone gives its lineage.
        fresh = lineage(repo, "inspect", "--lineage-dir", str(tmp_path / "fresh"), pushed, "--json")
        assert fresh.returncode == 0, fresh.stderr
        (record,) = json.loads(fresh.stdout)["records"].values()
        assert record["pex"]["sha256"] == pex_sha256(repo / DIST / "train.pex")
        assert record["provenance"]["subject"] == image_digest(repo)


def test_the_store_outlives_dist(repo: Path) -> None:
    pex_sha = pex_sha256(repo / DIST / "train.pex")
    assert lineage(repo, "inspect", pex_sha[:10]).returncode == 0  # takes in dist/mlbuild/lineage
    kept = repo.parent / "dist-kept"
    shutil.move(str(repo / "dist"), str(kept))
    try:
        again = lineage(repo, "inspect", pex_sha[:10], "--json")
        assert again.returncode == 0, again.stderr
        assert image_digest_from(kept) in again.stdout
    finally:
        shutil.move(str(kept), str(repo / "dist"))


def image_digest_from(dist: Path) -> str:
    return json.loads((dist / DIST.relative_to("dist") / "train.image.json").read_text())["manifest_digest"]
