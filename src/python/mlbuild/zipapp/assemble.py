"""A pipeline's zipapp PEX: the requirements-only zipapp PEX plus the pipeline's code.

pex builds a zipapp by compressing every file of every wheel again (~70 MB for churn,
13–25 s), although after a code edit only a few kilobytes of sources changed. Here the
requirements-only zipapp is built by pex once per lockfile (Pants caches it), and each
code change copies its entries *as they are* (compressed bytes, CRCs and sizes unchanged,
no inflating or deflating) into a new zip, then adds the sources and a new `PEX-INFO`.
The result is what pex would run: the same bootstrap, the same `.deps/`, the same
`__main__.py` apart from its pex hash.

What changes against the requirements-only PEX:
  * `PEX-INFO`: `entry_point`, `inject_env`, `code_hash` (sha1 over the sources' paths and
    bytes) and `pex_hash` (sha1 over the requirements PEX's pex hash and the new
    PEX-INFO), which pex uses as the key of its unzip cache: a code change must change it;
  * `__main__.py`: the pex hash it passes to the bootstrap (every quoted occurrence);
  * the sources, with their parent folders, added after the copied entries in sorted order,
    as pex stores them (1980-01-01, 0644 files, 0755 folders, deflated).

Same inputs, same bytes: nothing reads the clock, the umask or the build path.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from pathlib import Path
from typing import BinaryIO, Dict, Iterable, List, Mapping, Tuple

from mlbuild.kernel_copy import append_range
from mlbuild.runtime.errors import PlatformError, UserError

PEX_INFO = "PEX-INFO"
MAIN = "__main__.py"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_ATTR = 0o100644 << 16
DIR_ATTR = (0o40755 << 16) | 0x10  # the MS-DOS directory bit too, as pex and zip(1) set it
LOCAL_HEADER = struct.Struct(
    "<4s5H3L2H"
)  # signature, versions, flags, method, time, date, crc, sizes, name/extra lengths
LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
DATA_DESCRIPTOR_FLAG = 0x08


class ZipappError(UserError):
    """The requirements PEX or the sources are not what this module can assemble."""


def assemble(
    requirements_pex: Path,
    sources_dir: Path,
    out: Path,
    entry_point: str,
    inject_env: Mapping[str, str],
) -> str:
    """Write the pipeline's zipapp PEX to `out`; return its pex hash.

    `sources_dir` holds the code as the PEX imports it (source roots stripped).
    The file appears complete or not at all (written beside `out`, then renamed).
    """
    sources = _sources(Path(sources_dir))
    temp = Path(out).with_name(f".{Path(out).name}.tmp")
    try:
        with zipfile.ZipFile(requirements_pex) as src, open(requirements_pex, "rb") as raw, open(temp, "wb") as f:
            names = set(src.namelist())
            clashes = sorted(names & {name for name, _ in sources})
            if clashes:
                raise ZipappError(f"{requirements_pex}: already holds {clashes[0]}; expected a requirements-only PEX")
            info = json.loads(src.read(PEX_INFO))
            new_info, pex_hash = _pex_info(info, sources, entry_point, inject_env)
            main = _main_with_hash(src.read(MAIN), str(info.get("pex_hash")), pex_hash, requirements_pex)
            f.write(_preamble(raw, src.infolist()))
            with zipfile.ZipFile(f, "w") as dst:
                for zinfo in src.infolist():
                    if zinfo.filename == PEX_INFO:
                        dst.writestr(_fresh_info(zinfo), json.dumps(new_info, sort_keys=True).encode())
                    elif zinfo.filename == MAIN:
                        dst.writestr(_fresh_info(zinfo), main)
                    else:
                        _copy_raw(raw, zinfo, f, dst)
                _add_sources(dst, sources, names)
        os.chmod(temp, 0o755)
        os.replace(temp, out)
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError, KeyError) as e:
        temp.unlink(missing_ok=True)
        if isinstance(e, OSError) and not Path(requirements_pex).is_file():
            raise ZipappError(f"{requirements_pex}: no such file; expected the requirements-only zipapp PEX") from e
        raise PlatformError(f"could not assemble {out} from {requirements_pex}: {e}") from e
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return pex_hash


def assemble_packed(
    requirements_dir: Path,
    sources_dir: Path,
    out_dir: Path,
    entry_point: str,
    inject_env: Mapping[str, str],
) -> str:
    """Write the code-only part of the pipeline's packed PEX into `out_dir`; return its pex hash.

    A packed PEX is a folder: `.bootstrap` and `.deps/<wheel>` (zips, pex's own), `PEX-INFO`,
    `__main__.py` and the sources as plain files. Only the last three depend on the code, so
    only they are written here (`requirements_dir` needs no more than its `PEX-INFO` and
    `__main__.py`); the caller places `.bootstrap` and `.deps/` beside them unchanged, which is
    what keeps a code edit's cost apart from the dependencies' size.
    """
    requirements_dir, out_dir = Path(requirements_dir), Path(out_dir)
    sources = _sources(Path(sources_dir))
    clashes = sorted({name.split("/")[0] for name, _ in sources} & {PEX_INFO, MAIN, ".bootstrap", ".deps"})
    if clashes:
        raise ZipappError(f"{sources_dir}: holds {clashes[0]}, a name the PEX itself uses")
    try:
        info = json.loads((requirements_dir / PEX_INFO).read_bytes())
        main = (requirements_dir / MAIN).read_bytes()
    except FileNotFoundError as e:
        raise ZipappError(
            f"{requirements_dir}: no {Path(e.filename).name}; expected a packed requirements-only PEX"
        ) from e
    new_info, pex_hash = _pex_info(info, sources, entry_point, inject_env)
    files = [
        (PEX_INFO, json.dumps(new_info, sort_keys=True).encode(), 0o644),
        (MAIN, _main_with_hash(main, str(info.get("pex_hash")), pex_hash, requirements_dir), 0o755),
        *((name, data, 0o644) for name, data in sources),
    ]
    for name, data, mode in files:
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
    return pex_hash


def _sources(root: Path) -> List[Tuple[str, bytes]]:
    files = sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    if not files:
        raise ZipappError(f"{root}: no sources; expected the pipeline's code (source roots stripped)")
    return [(p.relative_to(root).as_posix(), p.read_bytes()) for p in files]


def code_hash(sources: Iterable[Tuple[str, bytes]]) -> str:
    h = hashlib.sha1()
    for name, data in sorted(sources):
        h.update(name.encode() + b"\0" + hashlib.sha1(data).digest())
    return h.hexdigest()


def _pex_info(
    info: Dict, sources: List[Tuple[str, bytes]], entry_point: str, inject_env: Mapping[str, str]
) -> Tuple[Dict, str]:
    new = dict(info, entry_point=entry_point, inject_env=dict(sorted(inject_env.items())), code_hash=code_hash(sources))
    new.pop("pex_hash", None)
    h = hashlib.sha1(str(info.get("pex_hash")).encode() + b"\0" + json.dumps(new, sort_keys=True).encode())
    new["pex_hash"] = h.hexdigest()
    return new, new["pex_hash"]


def _main_with_hash(main: bytes, old: str, new: str, where: Path) -> bytes:
    needle = f"'{old}'".encode()
    if f"pex_hash={needle.decode()}".encode() not in main:
        raise ZipappError(
            f"{where}: its {MAIN} does not pass pex_hash '{old}' (a pex version this module does not know)"
        )
    return main.replace(needle, f"'{new}'".encode())


def _preamble(raw: BinaryIO, entries: List[zipfile.ZipInfo]) -> bytes:
    """The bytes before the first entry: pex's `#!/usr/bin/env python3.x` line."""
    start = min((e.header_offset for e in entries), default=0)
    raw.seek(0)
    return raw.read(start)


def _fresh_info(zinfo: zipfile.ZipInfo) -> zipfile.ZipInfo:
    new = zipfile.ZipInfo(zinfo.filename, date_time=zinfo.date_time)
    new.external_attr = zinfo.external_attr
    new.create_system = zinfo.create_system
    new.compress_type = zinfo.compress_type
    return new


def _copy_raw(raw: BinaryIO, zinfo: zipfile.ZipInfo, out: BinaryIO, dst: zipfile.ZipFile) -> None:
    """Append `zinfo`'s compressed bytes as they are (copied by the kernel), with a local header of our own.

    NB: `zinfo` is the source's own entry, moved over to `dst` (the source is only read after
    this for raw bytes): a copy per entry cost more than the bytes.
    """
    raw.seek(zinfo.header_offset)
    header = LOCAL_HEADER.unpack(raw.read(LOCAL_HEADER.size))
    if header[0] != LOCAL_HEADER_SIGNATURE:
        raise zipfile.BadZipFile(f"bad local header for {zinfo.filename}")
    name_length, extra_length = header[-2], header[-1]
    data_offset = zinfo.header_offset + LOCAL_HEADER.size + name_length + extra_length
    zinfo.flag_bits &= ~DATA_DESCRIPTOR_FLAG  # sizes and CRC go in the header written here
    zinfo.header_offset = out.tell()
    out.write(zinfo.FileHeader())
    try:
        append_range(raw, out, zinfo.compress_size, offset=data_offset)
    except OSError as e:
        raise zipfile.BadZipFile(f"{zinfo.filename} is truncated ({e})") from e
    # NB: ZipFile writes the central directory from these on close, starting at start_dir.
    dst.filelist.append(zinfo)
    dst.NameToInfo[zinfo.filename] = zinfo
    dst.start_dir = out.tell()
    dst._didModify = True  # type: ignore[attr-defined]  # NB: ZipFile's private "write the directory on close" flag


def _add_sources(dst: zipfile.ZipFile, sources: List[Tuple[str, bytes]], existing: Iterable[str]) -> None:
    folders = set(existing)
    for name, data in sources:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i]) + "/"
            if folder not in folders:
                folders.add(folder)
                zinfo = zipfile.ZipInfo(folder, date_time=ZIP_EPOCH)
                zinfo.external_attr = DIR_ATTR
                dst.writestr(zinfo, b"")
        zinfo = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
        zinfo.external_attr = FILE_ATTR
        zinfo.compress_type = zipfile.ZIP_DEFLATED
        dst.writestr(zinfo, data)
