"""A generated corpus of hostile layers (test helper): each case is an image and what must happen to it.

Kinds: traversal, absolute paths, symlink and hardlink escapes (within a layer and across
layers), PAX records that override a harmless header, whiteouts, devices and unknown entry
types, modes (setuid/setgid/sticky/world-writable: accepted, stripped), bombs (bytes, entries,
one file, a PAX size), blob digest and diff_id mismatches. `unpack` and `check` must both refuse
every `refused` case with a message containing `fragment`, and write nothing outside the root.
"""

from __future__ import annotations

import dataclasses
import gzip
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from mlbuild.oci.image import Image
from mlbuild.oci.layer_rules import UnpackLimits
from mlbuild.oci.testing import D, F, H, Raw, S, raw_image

Layers = list[list[Raw]]
MIB = 1 << 20


@dataclass(frozen=True)
class Case:
    name: str
    layers: Layers
    fragment: str = ""  # in the refusal; '' for a case that must be accepted
    limits: UnpackLimits = UnpackLimits()
    modes: dict = field(default_factory=dict)  # accepted cases: path -> mode expected after unpack
    tamper: Callable[[Image], Image] | None = None  # applied to the built image (digest/diff_id cases)

    @property
    def refused(self) -> bool:
        return bool(self.fragment)

    def image(self, blobs: Path) -> Image:
        image = raw_image(blobs, *self.layers)
        return self.tamper(image) if self.tamper else image


def _flip_byte(at: Callable[[int], int]) -> Callable[[Image], Image]:
    """Corrupt one byte of the first layer's blob in place: same size, other digest."""

    def tamper(image: Image) -> Image:
        path = image.layers[0].blob_path
        data = bytearray(path.read_bytes())
        data[at(len(data))] ^= 0x01
        path.chmod(0o644)
        path.write_bytes(bytes(data))
        return image

    return tamper


def _swap_blob_same_size(image: Image) -> Image:
    """Replace layer 0's blob with layer 1's bytes when both have the same size (built so)."""
    a, b = image.layers[0].blob_path, image.layers[1].blob_path
    assert a.stat().st_size == b.stat().st_size, "the case must build two same-size blobs"
    a.chmod(0o644)
    a.write_bytes(b.read_bytes())
    return image


def _regzip_with_extra(image: Image) -> Image:
    """The same tar, gzipped again with a different header: same diff_id, other digest and size."""
    path = image.layers[0].blob_path
    path.chmod(0o644)
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), mtime=12345))
    return image


def _with_diff_ids(pick: Callable[[list[str]], list[str]]) -> Callable[[Image], Image]:
    def tamper(image: Image) -> Image:
        diff_ids = pick([layer.diff_id for layer in image.layers])
        layers = tuple(dataclasses.replace(layer, diff_id=d) for layer, d in zip(image.layers, diff_ids))
        config = {**image.config, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        return dataclasses.replace(image, config=config, layers=layers)

    return tamper


def _pax(name: str, records: dict, type: bytes = tarfile.REGTYPE, data: bytes = b"x", linkname: str = "") -> Raw:
    return Raw(name, type, data, linkname=linkname, pax=tuple(records.items()))


def cases() -> Iterator[Case]:
    # -- traversal ---------------------------------------------------------------------------
    for name in ("../x", "a/../../x", "./../x", "a/b/../../../x", "..", "../", "a/..//../x", "../../../../../../tmp/x"):
        yield Case(f"traversal {name}", [[F(name)]], "'..'")
    yield Case("traversal dir ../d", [[D("../d")]], "'..'")
    yield Case("traversal symlink name ../s", [[S("../s", "x")]], "'..'")
    # -- absolute ----------------------------------------------------------------------------
    for name in ("/x", "//x", "/etc/passwd", "/"):
        yield Case(f"absolute {name}", [[F(name)]], "absolute path")
    yield Case("absolute dir", [[D("/tmp/d")]], "absolute path")
    # -- symlink escapes within a layer --------------------------------------------------------
    for target in ("/", "/etc", "//etc", "/tmp/../etc"):
        yield Case(f"symlink->{target} then write, one layer", [[S("a", target), F("a/x")]], "absolute path")
    for target in ("..", "../", "../..", "./..", "b/../..", "../x/.."):
        yield Case(f"symlink->{target} then write, one layer", [[D("b"), S("a", target), F("a/x")]], "climbs above")
    yield Case("symlink chain escape, one layer", [[S("a", "b"), S("b", ".."), F("a/x")]], "climbs above")
    yield Case("symlink loop", [[S("a", "b"), S("b", "a"), F("a/x")]], "more than 40 symlinks")
    yield Case("file used as a directory", [[F("f"), F("f/x")]], "not a directory")
    yield Case("symlink to a dir, then a deeper escape", [[D("d"), S("d/up", "../.."), F("d/up/x")]], "climbs above")
    # -- symlink escapes across layers ---------------------------------------------------------
    yield Case("symlink->/ then write, next layer", [[S("a", "/")], [F("a/x")]], "absolute path")
    yield Case("symlink->.. then write, next layer", [[S("a", "..")], [F("a/x")]], "climbs above")
    yield Case("symlink->/etc then mkdir, next layer", [[S("a", "/etc")], [D("a/sub")]], "absolute path")
    yield Case("symlink->/etc then symlink inside, next layer", [[S("a", "/etc")], [S("a/s", "x")]], "absolute path")
    yield Case(
        "chain across three layers", [[D("d"), S("d/up", "..")], [S("d/up2", "up/..")], [F("d/up2/x")]], "climbs above"
    )
    yield Case("dir replaced by escaping symlink", [[D("a"), F("a/ok")], [S("a", "../..")], [F("a/x")]], "climbs above")
    # -- hardlinks ---------------------------------------------------------------------------
    yield Case("hardlink ../x", [[H("h", "../x")]], "'..'")
    yield Case("hardlink /etc/passwd", [[H("h", "/etc/passwd")]], "absolute path")
    yield Case("hardlink to missing", [[H("h", "nothing")]], "does not exist")
    yield Case("hardlink to a dir", [[D("d"), H("h", "d")]], "does not exist or is a directory")
    yield Case("hardlink to the root", [[H("h", ".")]], "image root")
    yield Case("hardlink through escaping symlink", [[S("a", "../.."), H("h", "a/x")]], "climbs above")
    yield Case(
        "hardlink through absolute symlink, across layers", [[S("a", "/etc")], [H("h", "a/passwd")]], "absolute path"
    )
    yield Case("hardlink to an escaping symlink's target", [[S("s", "/etc/passwd")], [H("h", "s/x")]], "absolute path")
    # -- PAX overrides -------------------------------------------------------------------------
    yield Case("PAX path ../x", [[_pax("innocent", {"path": "../x"})]], "'..'")
    yield Case("PAX path /etc/x", [[_pax("innocent", {"path": "/etc/x"})]], "absolute path")
    yield Case(
        "PAX linkpath of a hardlink /etc/passwd",
        [[_pax("h", {"linkpath": "/etc/passwd"}, tarfile.LNKTYPE, b"", "ok")]],
        "absolute path",
    )
    yield Case(
        "PAX linkpath of a symlink, then write",
        [[_pax("s", {"linkpath": "/"}, tarfile.SYMTYPE, b"", "ok"), F("s/x")]],
        "absolute path",
    )
    yield Case("PAX size 1 TB", [[_pax("big", {"size": str(10**12)})]], "over")
    yield Case(
        "PAX path to a device name", [[_pax("innocent", {"path": "dev/null"}, tarfile.CHRTYPE, b"")]], "device node"
    )
    # -- whiteouts -----------------------------------------------------------------------------
    for name in (".wh.", ".wh..", ".wh...", ".wh..wh.x", "d/.wh..wh.y"):
        yield Case(f"whiteout {name}", [[D("d"), F("d/y")], [F(name, b"")]], "not a valid whiteout")
    yield Case("whiteout through absolute symlink", [[S("a", "/")], [F("a/.wh.etc", b"")]], "absolute path")
    yield Case("whiteout through escaping symlink", [[S("a", "../..")], [F("a/.wh.x", b"")]], "climbs above")
    yield Case(
        "opaque whiteout through absolute symlink", [[S("a", "/tmp")], [F("a/.wh..wh..opq", b"")]], "absolute path"
    )
    yield Case("whiteout ../", [[F("../.wh.x", b"")]], "'..'")
    # -- devices and unknown types --------------------------------------------------------------
    yield Case("char device", [[Raw("null", tarfile.CHRTYPE)]], "device node")
    yield Case("block device", [[Raw("sda", tarfile.BLKTYPE)]], "device node")
    yield Case("char device in a later layer", [[F("ok")], [Raw("dev/kmsg", tarfile.CHRTYPE)]], "device node")
    for t in (b"Z", b"V", b"M", b"9", b"Y"):  # NB: not "X": tarfile reads it as a Solaris PAX header
        yield Case(f"unknown tar type {t.decode()}", [[Raw("odd", t)]], "unsupported tar entry type")
    # -- modes (accepted; special bits and world-write stripped) ---------------------------------
    yield Case("setuid file", [[F("su", b"x", 0o4755)]], modes={"su": 0o755})
    yield Case("setgid dir", [[D("sg", 0o2775)]], modes={"sg": 0o775})
    yield Case("sticky world-writable tmp", [[D("tmp", 0o1777)]], modes={"tmp": 0o775})
    yield Case("world-writable file", [[F("ww", b"x", 0o666)]], modes={"ww": 0o664})
    yield Case("all bits", [[F("all", b"x", 0o7777)]], modes={"all": 0o775})
    yield Case(
        "kept with keep_special_modes",
        [[F("su", b"x", 0o4755)]],
        limits=UnpackLimits(keep_special_modes=True),
        modes={"su": 0o4755},
    )
    # -- bombs ---------------------------------------------------------------------------------
    small = UnpackLimits(max_bytes=4 * MIB, max_entries=100, max_file_bytes=2 * MIB)
    yield Case(
        "gzip bomb (64 MiB of zeros)",
        [[F("zeros", bytes(64 * MIB))]],
        "inflates to more than",
        UnpackLimits(max_bytes=4 * MIB),
    )
    yield Case("one file over max_file_bytes", [[F("big", bytes(3 * MIB))]], "over 2097152", small)
    yield Case("too many entries", [[F(f"f{i}", b"") for i in range(150)]], "more than 100 entries", small)
    yield Case(
        "bytes over the limit across layers",
        [[F("a", bytes(MIB + MIB // 2))] for _ in range(3)],
        "inflates to more than",
        small,
    )
    yield Case(
        "entries over the limit across layers",
        [[F(f"l{j}f{i}", b"") for i in range(40)] for j in range(3)],
        "more than 100 entries",
        small,
    )
    # -- digests and diff_ids --------------------------------------------------------------------
    yield Case(
        "blob byte flipped mid-stream", [[F("a", b"hello" * 100)]], "corrupt", tamper=_flip_byte(lambda n: n // 2)
    )
    yield Case(
        "blob byte flipped in the gzip trailer",
        [[F("a", b"hello" * 100)]],
        "corrupt",
        tamper=_flip_byte(lambda n: n - 1),
    )
    yield Case(
        "blob swapped for a same-size one", [[F("a", b"1")], [F("a", b"2")]], "corrupt", tamper=_swap_blob_same_size
    )
    yield Case("blob re-gzipped (same tar)", [[F("a", b"x" * 1000)]], "corrupt", tamper=_regzip_with_extra)
    yield Case("wrong diff_id", [[F("a")]], "rootfs.diff_ids", tamper=_with_diff_ids(lambda d: ["sha256:" + "0" * 64]))
    yield Case(
        "diff_ids swapped",
        [[F("a", b"1")], [F("b", b"2")]],
        "rootfs.diff_ids",
        tamper=_with_diff_ids(lambda d: d[::-1]),
    )
