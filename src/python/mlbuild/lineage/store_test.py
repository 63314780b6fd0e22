from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from mlbuild.lineage.errors import AmbiguousError, NotFoundError, StoreError
from mlbuild.lineage.record import make_record
from mlbuild.lineage.store import Store, default_root
from mlbuild.lineage.testing import PIPELINE, chain, h, package
from mlbuild.stale_temps import STALE_SECONDS


def test_put_is_content_addressed_and_idempotent(tmp_path) -> None:
    store = Store(tmp_path)
    record = package()
    assert store.put(record) == record.id
    assert store.put(package()) == record.id
    files = os.listdir(store.records_dir)
    assert files == [f"{record.id}.json"]
    data = store.path_of(record.id).read_bytes()
    assert data == record.canonical and hashlib.sha256(data).hexdigest() == record.id


def test_a_fresh_store_reads_what_was_written(tmp_path) -> None:
    c = chain(tmp_path)
    assert [r.id for r in Store(tmp_path).records()] == [c.package.id, c.run.id, c.publish.id]
    assert Store(tmp_path).get(c.run.id) == c.run


def test_put_updates_a_loaded_index(tmp_path) -> None:
    store = Store(tmp_path)
    assert store.records() == []
    record = package()
    store.put(record)
    assert store.find(record.get("pex.sha256")) == [record]


def test_leftover_temp_files_are_ignored_then_swept_once_a_day_old(tmp_path) -> None:
    c = chain(tmp_path)
    young, old = c.store.records_dir / f".{c.run.id}.123.tmp", c.store.records_dir / f".{c.run.id}.456.tmp"
    young.write_bytes(b"{half")
    old.write_bytes(b"{half")
    then = time.time() - STALE_SECONDS - 60
    os.utime(old, (then, then))
    assert len(Store(tmp_path).records()) == 3
    assert young.exists() and not old.exists()  # NB: a writer killed mid-put leaves one; a live one may be writing


def test_an_edited_record_is_a_platform_error(tmp_path) -> None:
    c = chain(tmp_path)
    path = c.store.path_of(c.run.id)
    path.write_bytes(path.read_bytes().replace(b"0.9", b"0.99"))
    with pytest.raises(StoreError, match="contents hash to") as e:
        Store(tmp_path, strict=True).records()
    assert e.value.exit_code == 3


def test_a_corrupt_record_is_skipped_and_named_so_the_store_stays_usable(tmp_path, capsys) -> None:
    """Issue 11 item 12: one bad file made every lineage command exit 3."""
    c = chain(tmp_path)
    path = c.store.path_of(c.run.id)
    path.write_bytes(path.read_bytes().replace(b"0.9", b"0.99"))
    listed = tmp_path / "records" / f"{hashlib.sha256(b'[]').hexdigest()}.json"
    listed.write_bytes(b"[]")
    store = Store(tmp_path)
    assert [r.id for r in store.records()] == [c.package.id, c.publish.id]
    assert store.skipped == [path, listed] or store.skipped == [listed, path]
    err = capsys.readouterr().err
    assert f"{path}: contents hash to" in err and f"{listed}: not a lineage record" in err


@pytest.mark.parametrize(
    "environ, expected",
    [({"MLBUILD_LINEAGE_DIR": "/x/lineage"}, Path("/x/lineage")), ({}, Path("/repo/.mlbuild/lineage"))],
)
def test_default_root(environ, expected) -> None:
    assert default_root(environ, cwd=Path("/repo")) == expected


def _with_prefix(prefix: str, seed: str) -> str:
    return prefix + h(seed)[len(prefix) :]


def test_ambiguous_prefix_lists_every_candidate(tmp_path) -> None:
    store = Store(tmp_path)
    a = make_record("package", PIPELINE, "2024-05-01", pex={"sha256": _with_prefix("abcdef0", "a")})
    b = make_record("package", PIPELINE, "2024-05-02", pex={"sha256": _with_prefix("abcdef1", "b")})
    store.put(a)
    store.put(b)
    with pytest.raises(AmbiguousError) as e:
        store.resolve("abcdef")
    assert e.value.exit_code == 2
    assert len(e.value.candidates) == 2
    message = str(e.value)
    for record in (a, b):
        assert record.get("pex.sha256") in message and record.id[:12] in message
    assert "pex.sha256 of package" in message
    assert store.find("sha256:abcdef1") == [b]


@pytest.mark.parametrize(
    "query, message",
    [("0" * 64, "no lineage record mentions"), ("abc", "at least 6 hex"), ("no-such-job", "no-such-job")],
)
def test_unknown_is_a_clear_user_error(tmp_path, query, message) -> None:
    c = chain(tmp_path)
    with pytest.raises(NotFoundError, match=message) as e:
        c.store.resolve(query)
    assert e.value.exit_code == 2 and "3 record(s)" in str(e.value)


def test_get_by_job_name(tmp_path) -> None:
    c = chain(tmp_path)
    assert c.store.get(c.publish.get("job.name")) == c.publish
    assert c.store.get(c.run.id[:10]) == c.run


def test_the_default_store_takes_in_what_package_left_in_dist(tmp_path: Path) -> None:
    inbox = Store(tmp_path / "dist" / "mlbuild" / "lineage")
    pkg = package("inbox")
    inbox.put(pkg)
    store = Store.configured(environ={}, cwd=tmp_path)
    assert store.root == tmp_path / ".mlbuild" / "lineage"
    assert store.get(pkg.id) == pkg
    assert store.path_of(pkg.id).read_bytes() == pkg.canonical  # copied, so deleting dist/ loses nothing
    shutil.rmtree(tmp_path / "dist")
    assert Store.configured(environ={}, cwd=tmp_path).get(pkg.id) == pkg


def test_an_edited_inbox_record_is_not_taken_in(tmp_path: Path, capsys) -> None:
    inbox = Store(tmp_path / "inbox")
    pkg, good = package("edited"), package("good")
    inbox.put(pkg)
    inbox.put(good)
    inbox.path_of(pkg.id).write_bytes(pkg.canonical.replace(b'"package"', b'"run"'))
    store = Store(tmp_path / "store", [tmp_path / "inbox"])
    assert store.records() == [good]
    assert not store.path_of(pkg.id).exists() and "not taken in" in capsys.readouterr().err
