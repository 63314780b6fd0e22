"""The build spec (spec.json) that the Pants rules write and `python -m mlbuild.oci build` reads.

    {
      "ref": "trainer:1.0",                                  # ref name in the OCI layout
      "base": {"layout": "base/layout", "ref": "debian"},    # or null / absent: scratch
                                                  # ("thin": true: the base layout holds its index,
                                                  # manifest and config but not its layer blobs; the
                                                  # new layout references them and leaves them out)
      "layers": [                                            # in order, bottom to top
        {"name": "deps",
         "files": [{"src": "dist/app.pex", "dest": "/opt/program/app.pex", "mode": "0755"}],
         "dirs": [{"src": "conf", "dest": "/opt/program/conf"}],
         "zips": [{"src": "deps/yaml.whl", "dest": "/opt/program/deps/yaml"}],   # unpacked, minus bytecode
                                                  # (on dirs and zips, "bytecode": "cpython-311":
                                                  # pycs compiled here, see bytecode.py)
         "symlinks": [{"dest": "/usr/local/bin/train", "target": "/opt/program/train"}],
         "max_bytes": 1073741824}                 # optional: split by path into layers of at most this
                                                  # much content, named "<name>-<i>of<n>"
      ],
      "config": {"entrypoint": ["/opt/program/train"], "cmd": [], "env": {"PATH": "/usr/bin"},
                 "workdir": "/opt/program", "labels": {"k": "v"}},
      "annotations": {"org.opencontainers.image.source": "..."}
    }

Relative `src` and `layout` paths are relative to the spec file's directory. `mode` is an
octal string or an int; only its execute bits count (files become 0755 or 0644, see
determinism.py); without it the source file's execute bit decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Any, Mapping

from mlbuild.oci.bytecode import require_cache_tag
from mlbuild.oci.errors import SpecError
from mlbuild.oci.layer import LayerEntry, entries_from_directory, entries_from_zip, with_bytecode


@dataclass(frozen=True)
class BaseSpec:
    layout: Path
    ref: str | None
    thin: bool = False  # the base's layer blobs live elsewhere: referenced, never read or copied


@dataclass(frozen=True)
class LayerSpec:
    name: str
    entries: tuple[LayerEntry, ...]
    max_bytes: int | None = None  # split by path into layers of at most this much content


@dataclass(frozen=True)
class BuildSpec:
    ref: str
    base: BaseSpec | None
    layers: tuple[LayerSpec, ...]
    config: Mapping[str, Any]
    annotations: Mapping[str, str]


def load_spec(path: Path) -> BuildSpec:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise SpecError(f"{path}: cannot read the build spec ({e.strerror}).") from e
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}: not valid JSON ({e}).") from e
    return parse_spec(data, base_dir=path.parent, where=str(path))


def parse_spec(data: Any, *, base_dir: Path, where: str = "spec") -> BuildSpec:
    top = _object(data, where, required={"ref"}, optional={"base", "layers", "config", "annotations"})
    base = None
    if top.get("base") is not None:
        b = _object(top["base"], f"{where}: base", required={"layout"}, optional={"ref", "thin"})
        if not isinstance(b.get("thin", False), bool):
            raise SpecError(f"{where}: base.thin: must be true or false.")
        base = BaseSpec(base_dir / _str(b["layout"], f"{where}: base.layout"), b.get("ref"), b.get("thin", False))
    layers = tuple(
        _layer(item, base_dir, f"{where}: layers[{i}]")
        for i, item in enumerate(_list(top.get("layers", []), f"{where}: layers"))
    )
    config = _object(
        top.get("config", {}), f"{where}: config", optional={"entrypoint", "cmd", "env", "workdir", "labels"}
    )
    for key in ("entrypoint", "cmd"):
        if key in config and not all(isinstance(a, str) for a in _list(config[key], f"{where}: config.{key}")):
            raise SpecError(f"{where}: config.{key}: must be a list of strings (exec form).")
    for key in ("env", "labels"):
        _string_map(config.get(key, {}), f"{where}: config.{key}")
    return BuildSpec(
        ref=_str(top["ref"], f"{where}: ref"),
        base=base,
        layers=layers,
        config=config,
        annotations=_string_map(top.get("annotations", {}), f"{where}: annotations"),
    )


def _layer(data: Any, base_dir: Path, where: str) -> LayerSpec:
    layer = _object(data, where, required={"name"}, optional={"files", "dirs", "zips", "symlinks", "max_bytes"})
    max_bytes = layer.get("max_bytes")
    if max_bytes is not None and (not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1):
        raise SpecError(f"{where}.max_bytes: must be a positive whole number of bytes.")
    entries: list[LayerEntry] = []
    for i, f in enumerate(_list(layer.get("files", []), f"{where}.files")):
        f = _object(f, f"{where}.files[{i}]", required={"src", "dest"}, optional={"mode"})
        src = base_dir / _str(f["src"], f"{where}.files[{i}].src")
        if not src.is_file():
            raise SpecError(f"{where}.files[{i}].src: {src} is not a file.")
        mode = _mode(f["mode"], f"{where}.files[{i}].mode") if "mode" in f else None
        entries.append(LayerEntry.file_from(f["dest"], src, mode))
    for i, d in enumerate(_list(layer.get("dirs", []), f"{where}.dirs")):
        d = _object(d, f"{where}.dirs[{i}]", required={"src", "dest"}, optional={"bytecode"})
        found = entries_from_directory(base_dir / _str(d["src"], f"{where}.dirs[{i}].src"), d["dest"])
        tag = _bytecode(d, f"{where}.dirs[{i}]")
        entries.extend(with_bytecode(found, tag) if tag else found)
    for i, z in enumerate(_list(layer.get("zips", []), f"{where}.zips")):
        z = _object(z, f"{where}.zips[{i}]", required={"src", "dest"}, optional={"bytecode"})
        src = base_dir / _str(z["src"], f"{where}.zips[{i}].src")
        if not src.is_file():
            raise SpecError(f"{where}.zips[{i}].src: {src} is not a file.")
        entries.extend(entries_from_zip(src, z["dest"], _bytecode(z, f"{where}.zips[{i}]")))
    for i, s in enumerate(_list(layer.get("symlinks", []), f"{where}.symlinks")):
        s = _object(s, f"{where}.symlinks[{i}]", required={"dest", "target"})
        entries.append(LayerEntry.symlink(s["dest"], _str(s["target"], f"{where}.symlinks[{i}].target")))
    return LayerSpec(_str(layer["name"], f"{where}.name"), tuple(entries), max_bytes)


def _bytecode(item: dict[str, Any], where: str) -> str | None:
    """The cache tag an item's `.py` files are compiled for, if it names one this builder can write."""
    if "bytecode" not in item:
        return None
    tag = _str(item["bytecode"], f"{where}.bytecode")
    require_cache_tag(tag, f"{where}.bytecode")
    return tag


def _object(
    value: Any, where: str, *, required: AbstractSet[str] = frozenset(), optional: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: must be a JSON object.")
    missing = sorted(required - value.keys())
    unknown = sorted(value.keys() - required - optional)
    if missing:
        raise SpecError(f"{where}: missing {missing}.")
    if unknown:
        raise SpecError(f"{where}: unknown keys {unknown}; allowed: {sorted(required | optional)}.")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise SpecError(f"{where}: must be a JSON list.")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}: must be a non-empty string.")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SpecError(f"{where}: must be an object of string -> string.")
    return value


def _mode(value: Any, where: str) -> int:
    try:
        mode = int(value, 8) if isinstance(value, str) else int(value)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise SpecError(f'{where}: {value!r} is not a file mode; use an octal string such as "0755".')
    return mode
