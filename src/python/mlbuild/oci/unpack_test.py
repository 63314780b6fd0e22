from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from mlbuild.oci.errors import UnsafeLayerError, UserError
from mlbuild.oci.testing import D, F, H, Raw, S, raw_image
from mlbuild.oci.unpack import unpack_image

# Each case: layers (bottom to top), and a fragment the error must contain.
MALICIOUS = {
    "dotdot": ([[F("../outside.txt")]], "'..'"),
    "dotdot-nested": ([[D("a"), F("a/../../outside.txt")]], "'..'"),
    "absolute": ([[F("/outside.txt")]], "absolute path"),
    "symlink-absolute-in-layer": ([[S("a", "/"), F("a/outside.txt")]], "absolute path '/'"),
    "symlink-dotdot-in-layer": ([[S("a", "../"), F("a/outside.txt")]], "climbs above"),
    "symlink-absolute-across-layers": ([[S("a", "/etc")], [F("a/passwd")]], "symlink to the absolute path '/etc'"),
    "symlink-dotdot-across-layers": ([[S("a", "../../x")], [F("a/passwd")]], "climbs above"),
    "symlink-chain-across-layers": (
        [[D("d"), S("d/up", "..")], [S("d/up2", "up/..")], [F("d/up2/outside.txt")]],
        "climbs above",
    ),
    "hardlink-escape": ([[H("evil", "../outside.txt")]], "'..'"),
    "hardlink-absolute": ([[H("evil", "/etc/passwd")]], "absolute path"),
    "hardlink-missing": ([[H("evil", "nothing-here")]], "does not exist"),
    "hardlink-through-escaping-symlink": ([[S("a", "../.."), H("evil", "a/outside.txt")]], "climbs above"),
    "char-device": ([[Raw("null", tarfile.CHRTYPE)]], "device node"),
    "block-device": ([[Raw("sda", tarfile.BLKTYPE)]], "device node"),
    "whiteout-through-symlink": ([[S("a", "/")], [F("a/.wh.outside.txt")]], "absolute path '/'"),
}


def _snapshot(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_mode, p.lstat().st_size) for p in path.rglob("*")}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_layers_are_refused_and_nothing_outside_is_touched(tmp_path: Path, case: str) -> None:
    layers, fragment = MALICIOUS[case]
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (tmp_path / "sandbox").mkdir()
    root = tmp_path / "sandbox" / "rootfs"
    image = raw_image(tmp_path / "blobs", *layers)
    before = {k: v for k, v in _snapshot(tmp_path).items() if "/sandbox" not in k}

    with pytest.raises(UnsafeLayerError) as e:
        unpack_image(image, root)

    assert fragment in str(e.value)
    assert e.value.layer_digest in [layer.digest for layer in image.layers]
    assert e.value.layer_digest in str(e.value)
    assert outside.read_text() == "precious"
    after = {k: v for k, v in _snapshot(tmp_path).items() if "/sandbox" not in k}
    assert after == before
    assert list((tmp_path / "sandbox").iterdir()) == []  # NB: nothing partial remains


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_dir():
            out[rel] = f"dir {stat.S_IMODE(p.stat().st_mode):o}"
        else:
            out[rel] = f"{p.read_text()} {stat.S_IMODE(p.stat().st_mode):o}"
    return out


def test_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    image = raw_image(
        tmp_path / "blobs",
        [
            D("etc"),
            F("etc/keep", b"k"),
            F("etc/gone", b"g"),
            D("var"),
            F("var/old", b"o"),
            D("var/sub"),
            F("var/sub/x", b"x"),
        ],
        # Whiteouts apply to lower layers only, whatever their position in the tar.
        [F("var/new", b"n"), F("var/.wh..wh..opq", b""), F("etc/.wh.gone", b"")],
        [F("etc/gone", b"back")],
    )
    unpack_image(image, tmp_path / "root")
    assert _tree(tmp_path / "root") == {
        "etc": "dir 755",
        "etc/gone": "back 644",
        "etc/keep": "k 644",
        "var": "dir 755",
        "var/new": "n 644",
    }


def test_safe_symlinks_hardlinks_and_modes(tmp_path: Path) -> None:
    image = raw_image(
        tmp_path / "blobs",
        [D("usr"), D("usr/bin"), S("bin", "usr/bin"), F("usr/bin/tool", b"t", 0o755), D("ro", 0o555), F("ro/f", b"r")],
        # Writing through a symlink that stays inside the root is fine (merged /usr).
        [F("bin/train", b"train", 0o755), H("usr/bin/tool2", "usr/bin/tool"), F("./usr/bin/dot", b"d")],
        [S("usr/bin/tool", "tool2"), D("ro/sub/")],
    )
    unpack_image(image, tmp_path / "root")
    tree = _tree(tmp_path / "root")
    assert tree["bin"] == "-> usr/bin"
    assert tree["usr/bin/train"] == "train 755"
    assert tree["usr/bin/tool"] == "-> tool2"
    assert tree["usr/bin/tool2"] == "t 755"
    assert tree["usr/bin/dot"] == "d 644"
    assert tree["ro"] == "dir 555"
    assert tree["ro/sub"] == "dir 755"


def test_file_replaces_directory_and_directory_replaces_symlink(tmp_path: Path) -> None:
    image = raw_image(
        tmp_path / "blobs",
        [D("a"), F("a/x"), S("b", "a")],
        [F("a", b"file"), D("b"), F("b/y", b"y")],
    )
    unpack_image(image, tmp_path / "root")
    assert _tree(tmp_path / "root") == {"a": "file 644", "b": "dir 755", "b/y": "y 644"}


def test_fifo_is_skipped(tmp_path: Path) -> None:
    image = raw_image(tmp_path / "blobs", [Raw("pipe", tarfile.FIFOTYPE), F("ok")])
    result = unpack_image(image, tmp_path / "root")
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["ok"]
    assert "pipe (fifo)" in result.skipped[0]


def test_corrupt_blob_is_refused(tmp_path: Path) -> None:
    image = raw_image(tmp_path / "blobs", [F("a")])
    blob = image.layers[0].blob_path
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(UserError, match="corrupt or was modified"):
        unpack_image(image, tmp_path / "root")


def test_rootfs_must_be_missing_or_empty(tmp_path: Path) -> None:
    image = raw_image(tmp_path / "blobs", [F("a")])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine").write_text("keep")
    with pytest.raises(UserError, match="missing or empty directory"):
        unpack_image(image, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["mine"]
    (tmp_path / "empty").mkdir(mode=0o750)
    unpack_image(image, tmp_path / "empty")
    assert (tmp_path / "empty" / "a").is_file() and stat.S_IMODE((tmp_path / "empty").stat().st_mode) == 0o750


def test_stale_incomplete_siblings_of_dead_unpacks_are_removed(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".rootfs.incomplete-{dead.pid}-abc"
    (orphan / "ro").mkdir(parents=True)
    os.chmod(orphan / "ro", 0o555)
    old = time.time() - 600
    os.utime(orphan, (old, old))
    unpack_image(raw_image(tmp_path / "blobs", [F("a")]), tmp_path / "rootfs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs", "rootfs"]


def test_limits_raised_by_option_and_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlbuild.oci.cli import main
    from mlbuild.oci.layer_rules import UnpackLimits
    from mlbuild.oci.layout import write_layout

    image = raw_image(tmp_path / "blobs", [F("big", bytes(3 << 20))])
    write_layout(image, tmp_path / "layout", "x")
    base = ["unpack", "--layout", str(tmp_path / "layout")]
    assert main([*base, "--rootfs", str(tmp_path / "r1"), "--max-file-bytes", "1048576"]) == 2
    err = capsys.readouterr().err
    assert "--max-file-bytes or $MLBUILD_UNPACK_MAX_FILE_BYTES" in err and not (tmp_path / "r1").exists()
    assert main([*base, "--rootfs", str(tmp_path / "r2"), "--max-file-bytes", str(4 << 20)]) == 0
    assert UnpackLimits.from_env({"MLBUILD_UNPACK_MAX_BYTES": "10"}).max_bytes == 10
    with pytest.raises(UserError, match="MLBUILD_UNPACK_MAX_ENTRIES"):
        UnpackLimits.from_env({"MLBUILD_UNPACK_MAX_ENTRIES": "lots"})
