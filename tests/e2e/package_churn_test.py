"""`./pants package` on the churn pipeline: reproducible PEX and image, layering, and the
image run like SageMaker runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional

import pytest

from e2e.repo import Result, copy_repo, pants, pex_sha256, sha256_file
from mlbuild.tools_required import missing_message, require_tool, skip_or_fail

CHURN = "src/python/pipelines/churn:train"
DIST = Path("dist/src.python.pipelines.churn")
RUNS = Path("dist/mlbuild/runs/src.python.pipelines.churn/train")


# The second build runs this much later, without waiting for it: its year, month, day, hour,
# minute and second all differ from the first's, so a step that writes the time, even rounded to
# the day or to a zip entry's two seconds, changes a byte.
CLOCK_SKEW = timedelta(days=400, hours=7, minutes=13, seconds=17)
# NB: libfaketime, preloaded. `$LIB` is the loader's own token for the library folder (what the
# `faketime` CLI sets); the multithreaded variant, as Pants and pex run threads. The monotonic
# clock stays real: the engine's timeouts need no faking. The faked clock also reaches TLS: the
# second build's downloads check certificates at that time (the egress proxy's here are valid
# for two years).
LIBFAKETIME = "/usr/$LIB/faketime/libfaketimeMT.so.1"


def later_clock() -> Dict[str, str]:
    """The environment that runs a process CLOCK_SKEW later; tried on a child process first."""
    env = {
        "LD_PRELOAD": LIBFAKETIME,
        "FAKETIME": f"+{int(CLOCK_SKEW.total_seconds())}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    probe = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    seen = float(probe.stdout) - time.time() if probe.returncode == 0 else 0.0
    if abs(seen - CLOCK_SKEW.total_seconds()) > 60:
        skip_or_fail(
            f"{missing_message('libfaketime', 'faketime')}: a child with LD_PRELOAD={LIBFAKETIME} ran "
            f"{seen:.0f} s ahead, not {CLOCK_SKEW}; {probe.stderr.strip()}"
        )
    return env


def package_from_scratch(
    repo: Path, scratch: Path, seed: str, umask: int, clock: Optional[Mapping[str, str]] = None
) -> Result:
    """A build that shares no cache with any other: fresh named caches, no process cache.

    TMPDIR, the hash seed and `clock` (libfaketime's variables) go to the Pants client and,
    through `[subprocess-environment]`, to every Process that builds (pex, pip, mlbuild's own
    steps), whose environment Pants otherwise clears.
    """
    (scratch / "tmp").mkdir(parents=True)
    env = {"TMPDIR": str(scratch / "tmp"), "PYTHONHASHSEED": seed, **(clock or {})}
    to_processes = [f"--subprocess-environment-env-vars=+{sorted(env)!r}"]
    return pants(
        repo,
        "--no-local-cache",
        f"--named-caches-dir={scratch / 'named_caches'}",
        f"--local-execution-root-dir={scratch / 'tmp'}",
        *to_processes,
        "package",
        CHURN,
        env=env,
        umask=umask,
        timeout=2400,
    )


def summary(repo: Path) -> Dict:
    return json.loads((repo / DIST / "train.image.json").read_text())


def layer_digests(repo: Path) -> Dict[str, str]:
    return {layer["annotations"]["org.mlbuild.layer.name"]: layer["digest"] for layer in summary(repo)["layers"]}


TAMPERED = "mlbuild_tampered_by_e2e.py"
TRAP: Dict[str, set] = {}  # what the hand run between the two builds left in ~/.pex


def default_pex_root() -> Path:
    # NB: what pex falls back to with no PEX_ROOT; Pants' processes get no HOME, so their
    # fallback is the account's home from the password database: the same folder here.
    return Path(os.path.expanduser("~")) / ".pex"


def pex_names(folder: Path) -> set:
    """Every name in a packed PEX as a zipapp would list it: its files, and each wheel zip's members."""
    names: set[str] = set()
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".deps/") and path.is_file():
            names.update(f"{rel}/{name}" for name in zipfile.ZipFile(path).namelist())
        elif path.is_file():
            names.add(rel)
    return names


def ask_for_the_archive(repo: Path) -> None:
    """The oci-archive is opt-in (`oci_archive=True`); these builds check it too."""
    build = repo / "src/python/pipelines/churn/BUILD"
    build.write_text(build.read_text().replace('name="train",', 'name="train",\n    oci_archive=True,', 1))


def run_the_pex_as_a_user_would(repo: Path, scratch: Path) -> None:
    """The trap of a PEX run by hand: the default PEX_ROOT, and Python free to write bytecode there
    (bytecode that once entered the next build's PEX through a shared cache)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEX_") and k != "PYTHONDONTWRITEBYTECODE"}
    argv = [
        "python3.11",
        str(repo / DIST / "train.pex"),
        "local",
        "--data-dir",
        "src/python/pipelines/churn/data",
        "--runs-dir",
        str(scratch / "runs"),
    ]
    done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]


def plant_tampered_files(pex_root: Path) -> List[Path]:
    """A file no lockfile names, in every installed wheel of that PEX_ROOT."""
    planted = []
    for chroot in sorted(pex_root.glob("installed_wheels/*/*")):
        if chroot.is_dir():
            (chroot / TAMPERED).write_text("raise SystemExit('a build read a wheel from ~/.pex')\n")
            planted.append(chroot / TAMPERED)
    return planted


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    later = later_clock()
    first = copy_repo(tmp_path_factory.mktemp("first") / "checkout")
    second = copy_repo(tmp_path_factory.mktemp("second-at-another-path") / "elsewhere" / "checkout")
    for repo in (first, second):
        ask_for_the_archive(repo)
    a = package_from_scratch(first, tmp_path_factory.mktemp("scratch-a"), seed="1", umask=0o022)
    assert a.exit_code == 0, a.stderr[-4000:]
    # Between the two builds, leave the machine the way a developer's is: the PEX run by hand
    # (bytecode written into ~/.pex) and a cached wheel tampered with. Neither may matter.
    run_the_pex_as_a_user_would(first, tmp_path_factory.mktemp("hand-run"))
    planted = plant_tampered_files(default_pex_root())
    assert planted, f"running the PEX left no installed wheels in {default_pex_root()}"
    # As the PEX would name them: `.deps/<wheel>/<path>`.
    installed = default_pex_root() / "installed_wheels"
    TRAP["bytecode"] = {
        ".deps/" + "/".join(p.relative_to(installed).parts[1:]) for p in installed.glob("*/*/**/__pycache__/*.pyc")
    }
    try:
        # NB: CLOCK_SKEW later: that clock must not show up in any byte.
        b = package_from_scratch(second, tmp_path_factory.mktemp("scratch-b"), seed="2", umask=0o077, clock=later)
        assert b.exit_code == 0, b.stderr[-4000:]
    finally:
        for path in planted:
            path.unlink(missing_ok=True)
    yield first, second, a


RECORDS = "mlbuild/lineage/records"


def dist_files(repo: Path) -> Dict[str, str]:
    """sha256 of every file under dist/ but the lineage records (named by an id that hashes their
    time) and the bytecode that running the packed PEX by hand wrote beside its code."""
    return {
        str(p.relative_to(repo / "dist")): sha256_file(p)
        for p in sorted((repo / "dist").rglob("*"))
        if p.is_file() and not str(p.relative_to(repo / "dist")).startswith(RECORDS) and "__pycache__" not in p.parts
    }


def created(repo: Path) -> List[datetime]:
    """When the package's lineage records say they were made (by the provenance Process)."""
    bodies = [json.loads(p.read_text()) for p in sorted((repo / "dist" / RECORDS).glob("*.json"))]
    return [datetime.fromisoformat(body["created"].rstrip("Z")) for body in bodies]


def package_records(repo: Path) -> List[dict]:
    """The package's lineage records without `created`, the one field that holds a time."""
    bodies = [json.loads(p.read_text()) for p in sorted((repo / "dist" / RECORDS).glob("*.json"))]
    return [{k: v for k, v in body.items() if k != "created"} for body in bodies]


def test_two_builds_from_scratch_are_byte_identical(builds) -> None:
    first, second, _ = builds
    # The later clock reached the build's Processes: the provenance Process stamped the second
    # record CLOCK_SKEW later (plus the minutes the hand run and the second build took).
    (made_first,), (made_second,) = created(first), created(second)
    assert CLOCK_SKEW < made_second - made_first < CLOCK_SKEW + timedelta(hours=1), (made_first, made_second)
    assert pex_sha256(first / DIST / "train.pex") == pex_sha256(second / DIST / "train.pex")
    assert summary(first) == summary(second)
    assert sha256_file(first / DIST / "train.oci.tar") == sha256_file(second / DIST / "train.oci.tar")
    # Every file under dist/: the layout with its referrer, the provenance, the lineage record.
    assert dist_files(first) == dist_files(second)
    assert package_records(first) == package_records(second) and len(package_records(first)) == 1


def test_what_a_hand_run_left_in_the_users_pex_root_never_enters_the_build(builds) -> None:
    first, second, _ = builds
    before = pex_names(first / DIST / "train.pex")
    after = pex_names(second / DIST / "train.pex")
    # NB: a wheel may ship bytecode itself (numpy 2.1.3 ships one .pyc): that is locked input,
    # in both PEXes alike. What the hand run compiled must be in neither.
    written_by_the_run = TRAP["bytecode"] - before
    assert written_by_the_run, "the hand run wrote no bytecode into ~/.pex: the trap was not set"
    assert not written_by_the_run & after
    assert not [n for n in after if n.endswith(TAMPERED)]


def test_package_prints_digests_and_labels_lead_back_to_the_inputs(builds) -> None:
    first, _, result = builds
    manifest_digest = summary(first)["manifest_digest"]
    assert f"manifest digest: {manifest_digest}" in result.stderr
    pex_sha = pex_sha256(first / DIST / "train.pex")
    assert f"sha256: {pex_sha}" in result.stderr
    index = json.loads((first / DIST / "train.oci" / "index.json").read_text())
    (manifest,) = [m for m in index["manifests"] if "artifactType" not in m]
    (provenance,) = [m for m in index["manifests"] if "artifactType" in m]
    assert provenance["artifactType"] == "application/vnd.in-toto+json"
    assert manifest["digest"] == manifest_digest
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == "train"
    blob = first / DIST / "train.oci" / "blobs" / "sha256" / manifest_digest.split(":")[1]
    annotations = json.loads(blob.read_text())["annotations"]
    # The PEX is the image's sibling (built beside it, nothing of it inside, so an edit's two
    # builds run side by side): the provenance attached to the image names it.
    assert "org.mlbuild.pex.sha256" not in annotations
    assert annotations["org.mlbuild.pipeline.address"] == CHURN
    assert annotations["org.opencontainers.image.base.digest"].startswith("sha256:")
    assert len(annotations["org.mlbuild.lockfile.sha256"]) == 64
    # The builder names the mlbuild code that built it: the digest of the library's sources.
    statement = json.loads((first / DIST / "train.provenance.json").read_text())
    byproducts = {b["name"]: b["digest"]["sha256"] for b in statement["predicate"]["runDetails"]["byproducts"]}
    assert byproducts["pex"] == pex_sha
    builder = json.dumps(statement)
    assert "mlbuild@unknown" not in builder and '"mlbuild": "unknown"' not in builder
    assert "mlbuild@0.dev0+src." in builder


# NB: as `train` does: every installed wheel is a site dir. Warnings are errors, so a library
# that shells out to a tool the base lacks (joblib runs `cat /proc/cpuinfo`) fails here.
SMOKE_IMPORTS = """
import os, site, warnings
warnings.simplefilter("error")
for wheel in sorted(os.listdir("/opt/mlbuild/deps")):
    site.addsitedir(os.path.join("/opt/mlbuild/deps", wheel))
import numpy, scipy, sklearn, yaml
from joblib import cpu_count
physical = cpu_count(only_physical_cores=True)
assert isinstance(physical, int) and physical >= 1, physical
print("ok", physical, numpy.__version__, scipy.__version__, sklearn.__version__)
"""


@require_tool("umoci", "umoci")
@require_tool("bwrap", "bubblewrap")
def test_the_scientific_stack_imports_in_the_image_without_warnings(builds, tmp_path: Path) -> None:
    first, _, _ = builds
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{first / DIST / 'train.oci'}:train", str(bundle)],
        check=True,
        capture_output=True,
    )
    sandbox = [
        "bwrap",
        "--ro-bind",
        str(bundle / "rootfs"),
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--unshare-all",
    ]
    result = subprocess.run(
        [*sandbox, "/usr/bin/python3.11", "-I", "-c", SMOKE_IMPORTS], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr[-4000:]
    assert result.stdout.startswith("ok ")


@require_tool("skopeo", "skopeo")
def test_skopeo_accepts_the_layout_and_the_archive(builds) -> None:
    first, _, _ = builds
    for transport in (f"oci:{first / DIST / 'train.oci'}:train", f"oci-archive:{first / DIST / 'train.oci.tar'}"):
        out = subprocess.run(["skopeo", "inspect", transport], capture_output=True, text=True, check=True).stdout
        info = json.loads(out)
        assert info["Digest"] == summary(first)["manifest_digest"]
        assert (info["Architecture"], info["Os"]) == ("amd64", "linux")


@require_tool("umoci", "umoci")
def test_umoci_unpacks_the_image_with_train_on_path_and_nothing_under_opt_ml(builds, tmp_path: Path) -> None:
    first, _, _ = builds
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{first / DIST / 'train.oci'}:train", str(bundle)],
        check=True,
        capture_output=True,
    )
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
    assert list(after) == list(before) == ["debian", "dep-numpy", "dep-scikit_learn", "dep-scipy", "deps", "app"]
    assert [name for name in after if after[name] != before[name]] == ["app"]


@require_tool("bwrap", "bubblewrap")
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
    # The base ships what the scientific stack shells out to: no joblib warning or traceback.
    assert "UserWarning" not in contained.stdout + contained.stderr
    assert "Traceback" not in contained.stdout + contained.stderr
    for name in ("model/model.pkl", "model/metrics.json", "model/features.json"):
        assert sha256_file(container_run / name) == sha256_file(local_run / name), name
    # The same flags as `pants run`: an identical run is reused, `-- --force` trains again.
    again = pants(first, "run", "--mlbuild-container", CHURN)
    assert (
        again.exit_code == 0 and f"(same image, hyperparameters and data): {container_run}" in again.stdout
    ), again.stderr[-2000:]
    forced = pants(first, "run", "--mlbuild-container", CHURN, "--", "--force")
    assert forced.exit_code == 0, forced.stderr[-4000:]
    assert (first / RUNS / "latest").resolve() not in (container_run, local_run)


@require_tool("bwrap", "bubblewrap")
def test_a_failing_pipeline_in_the_image_reports_the_failure_reason(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    pipeline = repo / "src/python/pipelines/churn/pipeline.py"
    pipeline.write_text(
        pipeline.read_text().replace(
            "def train(ctx, features):\n", "def train(ctx, features):\n    raise ArithmeticError('diverged')\n"
        )
    )
    result = pants(repo, "run", "--mlbuild-container", CHURN)
    assert result.exit_code != 0
    output = result.stdout + result.stderr
    assert "stage train() raised ArithmeticError: diverged" in output
    (failed,) = (repo / RUNS).glob("*.failed")
    assert "ArithmeticError: diverged" in (failed / "output" / "failure").read_text()
    assert not (repo / RUNS / "latest").exists()
