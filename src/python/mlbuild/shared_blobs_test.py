import hashlib
import json
import os
import stat

from mlbuild import shared_blobs


def _want(tmp_path, files):
    root = tmp_path / "from"
    root.mkdir()
    want = {}
    for name, data in files.items():
        (root / name).write_bytes(data)
        want[hashlib.sha256(data).hexdigest()] = {"path": name, "size": len(data)}
    return root, want


def test_fill_places_each_missing_blob_once_read_only(tmp_path):
    root, want = _want(tmp_path, {"a.whl": b"a" * 10, "b.whl": b"b" * 20})
    store = tmp_path / "store"
    assert shared_blobs.missing(store, want) == sorted(want)
    assert shared_blobs.fill(store, want, root) == 2
    assert shared_blobs.missing(store, want) == []
    for hex_digest in want:
        path = shared_blobs.blob_path(store, hex_digest)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == hex_digest
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert shared_blobs.fill(store, want, root) == 0  # nothing left to place
    assert not [p for p in (store / "sha256").iterdir() if p.name.startswith(".tmp-")]


def test_a_blob_of_the_wrong_size_counts_as_missing(tmp_path):
    root, want = _want(tmp_path, {"a.whl": b"abc"})
    store = tmp_path / "store"
    (hex_digest,) = want
    shared_blobs.blob_path(store, hex_digest).parent.mkdir(parents=True)
    shared_blobs.blob_path(store, hex_digest).write_bytes(b"ab")  # truncated by a crash elsewhere
    assert shared_blobs.missing(store, want) == [hex_digest]
    shared_blobs.fill(store, want, root)
    assert shared_blobs.blob_path(store, hex_digest).read_bytes() == b"abc"


def test_cli_fills_and_a_bad_want_file_is_exit_2(tmp_path, capsys):
    root, want = _want(tmp_path, {"a.whl": b"x"})
    (tmp_path / "want.json").write_text(json.dumps(want))
    store = tmp_path / "s"
    assert (
        shared_blobs.main(["fill", "--store", str(store), "--want", str(tmp_path / "want.json"), "--from", str(root)])
        == 0
    )
    assert shared_blobs.missing(store, want) == []
    (tmp_path / "bad.json").write_text(json.dumps({"ab": {"size": 1}}))  # no path: nothing to fill from
    assert (
        shared_blobs.main(
            ["fill", "--store", str(tmp_path / "t"), "--want", str(tmp_path / "bad.json"), "--from", str(root)]
        )
        == 2
    )
    assert "bad.json" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "t" / "sha256")
