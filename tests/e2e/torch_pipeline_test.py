"""The PyTorch pipeline (torch resolve, ~3 GB of wheels) as a user drives it: lock, run, package,
a code-only edit, the container, and a second torch pipeline that shares every torch byte.

What it proves about size (the README's "Deep-learning-size artifacts"): a code-only edit
writes only the code's files under dist/ (the wheels and layers are links to one shared copy)
and changes only the app layer; two pipelines with torch have the same torch layer digests,
and the second one's push uploads none of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterator

import pytest

from e2e.repo import copy_repo, pants
from mlbuild.tools_required import require_tool

MLP = "src/python/pipelines/mlp:train"
DIST = Path("dist/src.python.pipelines.mlp")
RUNS = Path("dist/mlbuild/runs/src.python.pipelines.mlp/train")


def summary(repo: Path, dist: Path = DIST) -> Dict:
    return json.loads((repo / dist / "train.image.json").read_text())


def layers(repo: Path, dist: Path = DIST) -> Dict[str, str]:
    return {layer["annotations"]["org.mlbuild.layer.name"]: layer["digest"] for layer in summary(repo, dist)["layers"]}


def written_bytes(folder: Path) -> int:
    """Bytes in regular files under `folder` (a link to a shared blob is not a copy of it)."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    repo = copy_repo(tmp_path_factory.mktemp("torch") / "repo")
    yield repo
    shutil.rmtree(repo / "dist", ignore_errors=True)  # NB: gigabytes of shared blobs


def test_the_torch_lock_is_its_own_and_holds_torch(repo: Path) -> None:
    # NB: the lock is committed; regenerating it (`generate-lockfiles --resolve=torch`, ~100 s,
    # network) is what a user does after editing 3rdparty/python/torch-requirements.txt.
    lock = (repo / "3rdparty/python/torch.lock").read_text()
    assert '"project_name": "torch"' in lock and '"project_name": "scikit-learn"' not in lock
    default = (repo / "3rdparty/python/default.lock").read_text()
    assert '"project_name": "torch"' not in default


def test_pants_run_trains_the_torch_pipeline(repo: Path) -> None:
    result = pants(repo, "run", MLP, timeout=2400)
    assert result.exit_code == 0, result.stderr[-4000:]
    run = (repo / RUNS / "latest").resolve()
    metrics = json.loads((run / "model" / "metrics.json").read_text())
    assert 0.5 < metrics["validation:auc"] <= 1.0
    assert "device: cpu" in result.stdout + result.stderr


def test_package_then_a_code_only_edit_writes_only_the_code(repo: Path) -> None:
    first = pants(repo, "package", MLP, timeout=2400)
    assert first.exit_code == 0, first.stderr[-4000:]
    before = layers(repo)
    # Big distributions have layers of their own, split past layer_max_mb; torch among them.
    assert any(name.startswith("dep-torch") for name in before) and list(before)[-1] == "app"
    assert len(before) <= 100
    pex = repo / DIST / "train.pex"
    assert (pex / ".deps").is_dir() and all(p.is_symlink() for p in (pex / ".deps").iterdir())
    store_before = written_bytes(repo / "dist")
    pipeline = repo / "src/python/pipelines/mlp/pipeline.py"
    pipeline.write_text(pipeline.read_text() + "\n# a code-only change\n")
    second = pants(repo, "package", MLP)
    assert second.exit_code == 0, second.stderr[-4000:]
    after = layers(repo)
    assert [name for name in after if after[name] != before[name]] == ["app"]
    # dist/ grew by the new app layer and a few small files, not by a copy of anything torch.
    app_layer = next(
        layer["size"] for layer in summary(repo)["layers"] if layer["annotations"]["org.mlbuild.layer.name"] == "app"
    )
    assert written_bytes(repo / "dist") - store_before <= app_layer + 5 * 1024 * 1024
    # The packed PEX's wheels are links to whole blobs of dist/mlbuild/blobs, one per
    # distribution PEX-INFO names (churn's PEX is run from dist/ in package_churn_test; running
    # this one would unpack 3 GB of wheels into a PEX_ROOT first).
    info = json.loads((pex / "PEX-INFO").read_text())
    assert sorted(info["distributions"]) == sorted(p.name for p in (pex / ".deps").iterdir())
    for link in (pex / ".deps").iterdir():
        assert (
            Path(os.readlink(link)).parent.resolve() == (repo / "dist/mlbuild/blobs/sha256").resolve()
            and link.stat().st_size > 0
        )


@require_tool("skopeo", "skopeo")
def test_skopeo_reads_the_linked_layout(repo: Path) -> None:
    out = subprocess.run(
        ["skopeo", "inspect", f"oci:{repo / DIST / 'train.oci'}:train"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Digest"] == summary(repo)["manifest_digest"]


@require_tool("bwrap", "bubblewrap")
def test_the_torch_image_trains_in_the_sandbox(repo: Path) -> None:
    result = pants(repo, "run", "--mlbuild-container", MLP, "--", "--force", timeout=2400)
    assert result.exit_code == 0, result.stderr[-4000:]
    output = result.stdout + result.stderr
    assert "running ['/usr/local/bin/train']" in output and "device: cpu" in output
    run = (repo / RUNS / "latest").resolve()
    assert json.loads((run / "model" / "metrics.json").read_text())["validation:auc"] > 0.5


@require_tool("docker-registry", "docker-registry")
def test_a_second_torch_pipeline_shares_the_torch_layers_and_pushes_none_of_them(repo: Path, tmp_path: Path) -> None:
    from mlbuild.registry.local_server import serve_registry
    from mlbuild.registry.push import push_layout

    shutil.copytree(
        repo / "src/python/pipelines/mlp",
        repo / "src/python/pipelines/mlp2",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    result = pants(repo, "package", "src/python/pipelines/mlp2:train")
    assert result.exit_code == 0, result.stderr[-4000:]
    one, two = layers(repo), layers(repo, Path("dist/src.python.pipelines.mlp2"))
    shared = [name for name in one if name.startswith(("dep-torch", "dep-nvidia"))]
    assert shared and all(one[name] == two[name] for name in shared)
    with serve_registry(tmp_path / "registry") as registry:
        env = {**os.environ}
        push_layout(
            repo / DIST / "train.oci", "train", f"{registry.host}/mlp", allow_insecure_http=True, progress=None, env=env
        )
        second = push_layout(
            repo / "dist/src.python.pipelines.mlp2/train.oci",
            "train",
            f"{registry.host}/mlp2",
            mount_from=["mlp"],
            allow_insecure_http=True,
            progress=None,
            env=env,
        )
    sizes = {layer["digest"]: layer["size"] for layer in summary(repo)["layers"]}
    torch_bytes = sum(sizes[one[name]] for name in shared)
    # Everything but the new app layer, config and manifest came from the first push.
    assert second.uploaded_bytes < 1024 * 1024 and second.mounted_bytes >= torch_bytes, second
