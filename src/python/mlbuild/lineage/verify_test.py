from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest

from mlbuild.commands import cli
from mlbuild.lineage import collect, verify
from mlbuild.lineage.errors import NotFoundError, UserError
from mlbuild.lineage.provenance import PREDICATE_TYPE, STATEMENT_TYPE, VerificationError
from mlbuild.lineage.record import Record, make_record
from mlbuild.lineage.store import Store
from mlbuild.lineage.testing import PIPELINE, d, h, publish, run
from mlbuild.lineage.verify import CannotRebuild, NotReproducible, Options, RebuildFailed
from mlbuild.names import EXIT_NOT_VERIFIED
from mlbuild.oci.image import Image, set_config
from mlbuild.oci.layout import write_layout
from mlbuild.oci.referrer import IN_TOTO_MEDIA_TYPE, attach, make_referrer

REV = "1" * 40
CONFIG_PATH = "src/python/pipelines/churn/pipeline.yaml"
LAYERS = (("debian", d("L0")), ("deps", d("L1")), ("app", d("L2")))
TOOLS = {"pants": "2.17.1", "mlbuild": "unknown"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_build(
    root: Path,
    pex: bytes = b"pex",
    config: bytes = b"config",
    lock: str = h("lock"),
    base: str = d("base"),
    layers: Sequence[Tuple[str, str]] = LAYERS,
    revision: str = REV,
    tools: Dict[str, str] = TOOLS,
    compressor: str = "isal-1.9.1/level1",
) -> Path:
    """What `pants package` writes for the churn pipeline, in miniature; returns the summary."""
    (root / CONFIG_PATH).parent.mkdir(parents=True, exist_ok=True)
    (root / CONFIG_PATH).write_bytes(config)
    out = root / "dist" / "src.python.pipelines.churn"
    blobs = out / "train.oci" / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (out / "train.pex").write_bytes(pex)
    labels = {
        collect.REVISION_LABEL: revision,
        collect.BASE_DIGEST_LABEL: base,
        collect.BASE_NAME_LABEL: "docker/debian-python3.11:base",
        collect.PIPELINE_LABEL: PIPELINE,
        collect.PEX_LABEL: _sha(pex),
        collect.LOCKFILE_PATH_LABEL: "3rdparty/python/default.lock",
        collect.LOCKFILE_LABEL: lock,
    }
    image_config = json.dumps({"config": {"Labels": labels}}, sort_keys=True).encode()
    (blobs / _sha(image_config)).write_bytes(image_config)
    manifest = json.dumps({"config": _sha(image_config), "layers": [digest for _, digest in layers]}).encode()
    summary = {
        "ref": "train",
        "manifest_digest": "sha256:" + _sha(manifest),
        "config_digest": "sha256:" + _sha(image_config),
        "layers": [
            {
                "digest": digest,
                "diff_id": d(digest),
                "annotations": {verify.LAYER_NAME_ANNOTATION: name, verify.LAYER_COMPRESSOR_ANNOTATION: compressor},
            }
            for name, digest in layers
        ],
        "layout": "train.oci",
    }
    (out / "train.image.json").write_text(json.dumps(summary))
    statement = {
        "subject": [{"name": "x", "digest": {"sha256": _sha(manifest)}}],
        "predicate": {"runDetails": {"builder": {"version": tools}}},
    }
    (out / "train.provenance.json").write_text(json.dumps(statement))
    return out / "train.image.json"


def package_record(summary: Path, config: bytes = b"config", **overrides) -> Record:
    record = collect.package_record(collect.read_image_build(summary), None, CONFIG_PATH, _sha(config))
    body = record.body
    body.update(overrides)
    return Record(body)


class FakeRunner:
    """Stands in for git and Pants: `build(checkout)` plays `pants package`."""

    def __init__(
        self, repo: Path, build: Callable[[Path], object], revisions: Sequence[str] = (REV,), pants_fails: bool = False
    ) -> None:
        self.repo, self.build, self.revisions, self.pants_fails = repo, build, set(revisions), pants_fails
        self.calls: List[Tuple[Tuple[str, ...], Optional[Path], bool]] = []
        self.checkout: Optional[Path] = None

    def __call__(self, argv: Sequence[str], cwd: Optional[Path], stream: bool) -> str:
        self.calls.append((tuple(argv), cwd, stream))
        if argv[:2] == ["git", "rev-parse"]:
            return f"{self.repo}\n"
        if "cat-file" in argv:
            if argv[-1].split("^")[0] not in self.revisions:
                raise RebuildFailed("fatal: Not a valid object name")
            return ""
        if argv[:2] == ["git", "clone"]:
            self.checkout = Path(argv[-1])
            assert self.checkout.is_dir() and not any(self.checkout.iterdir())
            return ""
        if argv[0] == "./pants":
            assert cwd is not None and cwd == self.checkout
            if self.pants_fails:
                raise RebuildFailed("`./pants ...` exited 1; its output is above.")
            self.build(cwd)
        return ""

    @property
    def argvs(self) -> List[Tuple[str, ...]]:
        return [argv for argv, _, _ in self.calls]


@pytest.fixture
def setup(tmp_path):
    """A repo whose dist holds the original build, and a store with its package record."""
    repo = tmp_path / "repo"
    summary = write_build(repo)
    record = package_record(summary)
    store = Store(tmp_path / "store")
    store.put(record)
    return repo, store, record, tmp_path / "work"


def _verify(store: Store, query: str, runner: FakeRunner, work: Path, **options) -> str:
    work.mkdir(exist_ok=True)
    logs: List[str] = []
    return verify.verify(store, query, Options(workdir=work, **options), runner, logs.append)


# --- success ------------------------------------------------------------------------------


def test_identical_rebuild_verifies_and_removes_the_checkout(setup) -> None:
    repo, store, record, work = setup
    runner = FakeRunner(repo, write_build)
    line = _verify(store, record.get("image.manifest_digest"), runner, work)
    assert line.startswith(f"verified: {record.get('image.manifest_digest')} rebuilt identically from {REV}; ")
    assert "holds no provenance" in line  # NB: this fake build writes no layout index
    checkout = str(runner.checkout)
    assert runner.argvs == [
        ("git", "rev-parse", "--show-toplevel"),
        ("git", "-C", str(repo), "cat-file", "-e", f"{REV}^{{commit}}"),
        ("git", "clone", "--no-hardlinks", "--quiet", str(repo), checkout),
        ("git", "-C", checkout, "checkout", "--quiet", REV),
        (
            "./pants",
            "--no-pantsd",
            "--no-local-cache",
            f"--named-caches-dir={checkout}-named-caches",
            "package",
            PIPELINE,
        ),
    ]
    assert runner.calls[-1][2] is True  # NB: Pants' output is streamed, not captured.
    assert list(work.iterdir()) == []


def test_keep_repo_and_reuse_cache(setup, tmp_path) -> None:
    repo, store, record, work = setup
    runner = FakeRunner(tmp_path / "elsewhere", write_build)
    _verify(store, record.get("pex.sha256")[:10], runner, work, repo=repo, keep=True, reuse_cache=True)
    assert ("git", "rev-parse", "--show-toplevel") not in runner.argvs
    assert runner.argvs[-1] == ("./pants", "--no-pantsd", "package", PIPELINE)
    assert runner.checkout is not None and (runner.checkout / "dist").is_dir()


# --- which record: refusals and following run/publish records -----------------------------


@pytest.mark.parametrize(
    "source, message",
    [
        ({"revision": REV, "dirty": True}, verify.DIRTY_REFUSAL),
        ({"revision": "unknown", "dirty": False}, "revision is unknown"),
        (None, "revision is unknown"),
    ],
)
def test_refuses_dirty_or_unknown_builds_without_running_anything(tmp_path, source, message) -> None:
    summary = write_build(tmp_path / "repo")
    record = package_record(summary, source=source)
    store = Store(tmp_path / "store")
    store.put(record)
    runner = FakeRunner(tmp_path / "repo", write_build)
    with pytest.raises(CannotRebuild, match=message) as e:
        _verify(store, record.get("image.manifest_digest"), runner, tmp_path / "work")
    assert e.value.exit_code == 2 and record.id[:12] in str(e.value)
    assert runner.calls == []


def test_dirty_message_is_the_documented_one(tmp_path) -> None:
    assert verify.DIRTY_REFUSAL == "cannot rebuild: the build came from uncommitted changes; commit and package again"


def test_a_clean_record_of_the_same_artifact_wins_over_a_dirty_one(setup) -> None:
    repo, store, record, work = setup
    store.put(
        package_record(
            repo / "dist/src.python.pipelines.churn/train.image.json",
            created="2030-01-01T00:00:00Z",
            source={"revision": REV, "dirty": True},
        )
    )
    chosen = verify.resolve_package(Store(store.root), record.get("pex.sha256"))
    assert chosen.id == record.id


def test_revision_missing_from_the_repo(setup) -> None:
    repo, store, record, work = setup
    runner = FakeRunner(repo, write_build, revisions=())
    with pytest.raises(CannotRebuild, match=f"revision {REV} is not in {repo}"):
        _verify(store, record.id, runner, work)
    assert not any(argv[1] == "clone" for argv in runner.argvs)


def test_follows_run_and_publish_records_to_their_package(setup) -> None:
    repo, store, pkg, work = setup
    r = run(pkg)  # NB: linked only by the PEX sha256
    pub = publish(pkg, r)  # linked by the image digest and, through its parent, the PEX
    orphan = run(pkg, created="2024-06-01T00:00:00Z", pex={"sha256": h("another pex")})
    for record in (r, pub, orphan):
        store.put(record)
    store = Store(store.root)
    for query in (
        r.id,
        r.get("model.sha256"),
        r.get("job.name"),
        pub.get("job.name"),
        pub.get("image.ref"),
        pub.id[:8],
    ):
        assert verify.resolve_package(store, query).id == pkg.id, query
    with pytest.raises(UserError, match="no package record"):
        verify.resolve_package(store, orphan.id)


def test_queries_that_are_not_artifacts(setup) -> None:
    repo, store, pkg, work = setup
    with pytest.raises(UserError, match="not an artifact mlbuild built or ran.*lockfile.sha256 of package"):
        verify.resolve_package(store, pkg.get("lockfile.sha256"))
    with pytest.raises(NotFoundError):
        verify.resolve_package(store, h("nothing"))


# --- mismatches: which input differs ------------------------------------------------------


def _mismatch(setup, **changes) -> NotReproducible:
    repo, store, record, work = setup
    runner = FakeRunner(repo, lambda checkout: write_build(checkout, **changes))
    with pytest.raises(NotReproducible) as e:
        _verify(store, record.get("image.manifest_digest"), runner, work)
    assert e.value.exit_code == EXIT_NOT_VERIFIED
    assert list(work.iterdir()) == []  # NB: removed on failure too
    return e.value


def _whats(e: NotReproducible) -> List[str]:
    return [d.what for d in e.differences]


def test_code_change_names_the_pex_and_the_app_layer(setup) -> None:
    e = _mismatch(setup, pex=b"other code", layers=(*LAYERS[:2], ("app", d("L2 changed"))))
    assert _whats(e) == ["PEX sha256", "layer 2 app (app)", "image config digest", "image manifest digest"]
    assert "different code/PEX; changed layer(s): app" in str(e)
    assert f"rebuilt {d('L2 changed')}" in str(e) and "the code or its packaging differs" in str(e)


def test_lockfile_change_names_the_lockfile_and_deps_layer(setup) -> None:
    e = _mismatch(setup, lock=h("new lock"), layers=(LAYERS[0], ("deps", d("L1 changed")), LAYERS[2]))
    assert _whats(e)[:2] == ["lockfile sha256", "layer 1 deps (deps)"]
    assert "different inputs: lockfile sha256" in str(e)
    assert f"lockfile sha256: recorded {h('lock')}, rebuilt {h('new lock')}" in str(e)


def test_config_and_base_changes(setup) -> None:
    e = _mismatch(setup, config=b"new config", base=d("new base"), layers=(("debian", d("L0 new")), *LAYERS[1:]))
    assert _whats(e)[:3] == ["config sha256", "base image digest", "layer 0 debian (base)"]
    assert "different inputs: config sha256, base image digest" in str(e)


def test_split_layers_and_tool_versions(setup) -> None:
    e = _mismatch(
        setup,
        layers=(LAYERS[0], ("dep-torch", d("torch")), ("deps", d("L1 rest")), LAYERS[2]),
        tools={"pants": "2.18.0", "mlbuild": "unknown"},
        compressor="isal-1.10.0/level1",
    )
    whats = _whats(e)
    assert "layer count" in whats and "layer 1 dep-torch (deps)" in whats and "layer 3 app (app)" in whats
    assert "tool pants" in whats and "tool layer compressor" in whats and "tool mlbuild" not in whats
    assert "different tools: layer compressor, pants" in str(e)


def test_same_inputs_different_bytes_is_called_nondeterminism(setup) -> None:
    e = _mismatch(setup, layers=(*LAYERS[:2], ("app", d("L2 flaky"))))
    assert _whats(e) == ["layer 2 app (app)", "image manifest digest"]
    assert "no recorded input differs, so the build is not deterministic" in str(e)


def test_a_dirty_rebuild_is_reported(setup) -> None:
    e = _mismatch(setup, revision=REV + "-dirty")
    assert "source revision label" in _whats(e)


def test_layer_names_come_from_the_rebuild_when_the_original_summary_is_gone(setup) -> None:
    repo, store, record, work = setup
    (repo / "dist/src.python.pipelines.churn/train.image.json").unlink()
    e = _mismatch(setup, layers=(LAYERS[0], ("deps", d("x")), LAYERS[2]))
    assert "layer 1 deps (deps)" in _whats(e)


def test_pants_failure_is_a_platform_error_and_cleans_up(setup) -> None:
    repo, store, record, work = setup
    with pytest.raises(RebuildFailed) as e:
        _verify(store, record.id, FakeRunner(repo, write_build, pants_fails=True), work)
    assert e.value.exit_code == 3 and list(work.iterdir()) == []


def test_no_summary_written(setup) -> None:
    repo, store, record, work = setup
    with pytest.raises(RebuildFailed, match="wrote no dist/src.python.pipelines.churn/train.image.json"):
        _verify(store, record.id, FakeRunner(repo, lambda checkout: None), work)


# --- pieces -------------------------------------------------------------------------------


def test_output_paths() -> None:
    assert verify.output_paths("src/python/pipelines/churn:train") == ("src.python.pipelines.churn", "train")
    assert verify.output_paths("src/python/pipelines/iris") == ("src.python.pipelines.iris", "iris")


def test_child_env_drops_what_would_leak_into_the_checkout() -> None:
    env = verify.child_env(
        {"PYTHONPATH": "/work/main/src/python", "PEX_ROOT": "x", "HOME": "/root", "PANTS_CA_CERTS_PATH": "c"}
    )
    assert env == {"HOME": "/root", "PANTS_CA_CERTS_PATH": "c"}


def test_run_command(tmp_path, capsys) -> None:
    assert verify.run_command([sys.executable, "-c", "print('out')"], tmp_path) == "out\n"
    with pytest.raises(RebuildFailed, match="exited 3: boom"):
        verify.run_command([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])
    assert verify.run_command([sys.executable, "-c", "print('streamed')"], tmp_path, True) == ""
    assert "streamed" in capsys.readouterr().err
    with pytest.raises(RebuildFailed, match="not found"):
        verify.run_command([str(tmp_path / "no-such-tool")])


# --- the CLI ------------------------------------------------------------------------------


def test_cli_exit_codes(setup, monkeypatch, capsys) -> None:
    repo, store, record, work = setup
    work.mkdir()
    monkeypatch.setattr(verify.tempfile, "tempdir", str(work))
    monkeypatch.setattr(verify, "run_command", FakeRunner(repo, write_build))
    code = cli.main(
        ["verify", "--lineage-dir", str(store.root), record.get("image.manifest_digest"), "--repo", str(repo)]
    )
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("verified: sha256:") and "rebuilding in" in err

    monkeypatch.setattr(verify, "run_command", FakeRunner(repo, lambda checkout: write_build(checkout, pex=b"changed")))
    code = cli.main(["verify", "--lineage-dir", str(store.root), record.id[:8]])
    out, err = capsys.readouterr()
    assert code == EXIT_NOT_VERIFIED and "not reproducible" in err and "PEX sha256: recorded" in err

    dirty = package_record(
        repo / "dist/src.python.pipelines.churn/train.image.json",
        source={"revision": REV, "dirty": True},
        created="2031-01-01T00:00:00Z",
    )
    Store(store.root).put(dirty)
    code = cli.main(["verify", "--lineage-dir", str(store.root), dirty.id])
    assert code == 2 and verify.DIRTY_REFUSAL in capsys.readouterr().err


# --- the provenance stored in the rebuilt layout ---------------------------------------------


def _attested_checkout(root: Path, builder: str = "v1", attach_it: bool = True) -> Tuple[str, Optional[str]]:
    """A checkout whose dist holds a real layout with (or without) a provenance referrer."""
    image = set_config(Image(), entrypoint=["train"], labels={collect.PIPELINE_LABEL: PIPELINE})
    out = root / "dist" / "src.python.pipelines.churn"
    entry = write_layout(image, out / "train.oci", "train")
    summary = {
        "ref": "train",
        "layout": "train.oci",
        "manifest_digest": entry.digest,
        "config_digest": image.config_descriptor().digest,
        "layers": [],
    }
    (out / "train.image.json").write_text(json.dumps(summary))
    if not attach_it:
        return entry.digest, None
    stmt = {
        "_type": STATEMENT_TYPE,
        "predicateType": PREDICATE_TYPE,
        "subject": [{"name": "x", "digest": {"sha256": entry.digest[7:]}}],
        "builder": builder,
    }
    return (
        entry.digest,
        attach(out / "train.oci", make_referrer(entry, IN_TOTO_MEDIA_TYPE, json.dumps(stmt).encode())).digest,
    )


def _record(image: str, provenance: Optional[str], subject: Optional[str] = None) -> Record:
    fields = {"provenance": {"digest": provenance, "subject": subject or image}} if provenance else {}
    return make_record("package", PIPELINE, "2024-05-01T10:00:00Z", image={"manifest_digest": image}, **fields)


def test_rebuilt_provenance_identical_to_the_recorded_one(tmp_path) -> None:
    image, stored = _attested_checkout(tmp_path)
    line = verify.check_rebuilt_provenance(tmp_path, _record(image, stored))
    assert "identical to the recorded" in line and image[7:19] in line


def test_rebuilt_provenance_differs_or_is_missing(tmp_path) -> None:
    image, stored = _attested_checkout(tmp_path / "a", builder="v2")
    with pytest.raises(NotReproducible, match="provenance did not") as e:
        verify.check_rebuilt_provenance(tmp_path / "a", _record(image, d("other statement")))
    assert [x.what for x in e.value.differences] == ["provenance digest"] and e.value.differences[0].rebuilt == stored
    bare, _ = _attested_checkout(tmp_path / "b", attach_it=False)
    with pytest.raises(NotReproducible, match="stored no provenance"):
        verify.check_rebuilt_provenance(tmp_path / "b", _record(bare, d("recorded")))
    assert "holds no provenance" in verify.check_rebuilt_provenance(tmp_path / "b", _record(bare, None))


def test_a_record_whose_provenance_is_about_another_image_is_refused(tmp_path) -> None:
    image, stored = _attested_checkout(tmp_path)
    with pytest.raises(VerificationError, match="inconsistent"):
        verify.check_rebuilt_provenance(tmp_path, _record(image, stored, subject=d("elsewhere")))


def test_cli_json_outcomes_on_stdout_for_every_branch(setup, monkeypatch, capsys) -> None:
    """Issue 17: `verify --json` on its error branch had no test; machines read stdout, so a
    failure must still print one JSON document there (with the exit code and differences)."""
    repo, store, record, work = setup
    work.mkdir()
    monkeypatch.setattr(verify.tempfile, "tempdir", str(work))
    monkeypatch.setattr(verify, "run_command", FakeRunner(repo, write_build))
    code = cli.main(["verify", "--lineage-dir", str(store.root), record.id[:8], "--json", "--repo", str(repo)])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out) == {
        "query": record.id[:8],
        "verified": True,
        "message": json.loads(out)["message"],
    }
    assert json.loads(out)["message"].startswith("verified: sha256:")

    monkeypatch.setattr(verify, "run_command", FakeRunner(repo, lambda checkout: write_build(checkout, pex=b"changed")))
    code = cli.main(["verify", "--lineage-dir", str(store.root), record.id[:8], "--json"])
    out, err = capsys.readouterr()
    outcome = json.loads(out)
    assert (
        code == EXIT_NOT_VERIFIED
        and outcome["verified"] is False
        and outcome["exit_code"] == EXIT_NOT_VERIFIED
        and outcome["query"] == record.id[:8]
    )
    assert outcome["message"].startswith("not reproducible") and f"mlbuild: error: {outcome['message']}\n" in err
    pex = [d for d in outcome["differences"] if "PEX" in d["what"]]
    assert pex and pex[0]["recorded"] != pex[0]["rebuilt"] and set(pex[0]) == {"what", "recorded", "rebuilt", "why"}

    dirty = package_record(
        repo / "dist/src.python.pipelines.churn/train.image.json",
        source={"revision": REV, "dirty": True},
        created="2031-01-01T00:00:00Z",
    )
    Store(store.root).put(dirty)
    code = cli.main(["verify", "--lineage-dir", str(store.root), dirty.id, "--json"])
    out, err = capsys.readouterr()
    outcome = json.loads(out)
    assert code == 2 and verify.DIRTY_REFUSAL in outcome["message"]
    assert outcome == {
        "query": dirty.id,
        "verified": False,
        "message": outcome["message"],
        "differences": [],
        "exit_code": 2,
    }
