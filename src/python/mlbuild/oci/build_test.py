from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlbuild.oci import layer_writer
from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.build import build_image
from mlbuild.oci.determinism import choose_compressor
from mlbuild.oci.layout import read_layout
from mlbuild.oci.spec import parse_spec

SRC_ROOT = Path(__file__).resolve().parents[2]


def _make_sources(root: Path, *, seed: int, top_text: str = "v1") -> None:
    """The same content every time, created in a shuffled order with random mtimes and modes noise."""
    rng = random.Random(seed)
    files = {f"pkg/mod{i}.py": f"print({i})\n" * (i + 1) for i in range(20)}
    files.update({"pkg/sub/data.bin": "d" * 5000, "bin/train": "#!/usr/bin/python3\n", "top.txt": top_text})
    items = list(files.items())
    rng.shuffle(items)
    for rel, text in items:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        # Noise: group/other read bits and mtimes vary; only the execute bit may matter.
        os.chmod(path, (0o755 if rel == "bin/train" else 0o644) & ~rng.choice([0, 0o044, 0o004]))
        t = rng.randint(0, 2_000_000_000)
        os.utime(path, (t, t))
    os.symlink("mod1.py", root / "pkg" / "alias.py")


def _spec(root: Path, *, seed: int) -> dict:
    files = [
        {"src": "src/bin/train", "dest": "/opt/program/train", "mode": "0755"},
        {"src": "src/top.txt", "dest": "/opt/program/top.txt"},
    ]
    random.Random(seed).shuffle(files)
    return {
        "ref": "trainer:1",
        "layers": [
            {"name": "deps", "dirs": [{"src": "src/pkg", "dest": "/opt/program/pkg"}]},
            {
                "name": "app",
                "files": files,
                "symlinks": [{"dest": "/usr/local/bin/train", "target": "/opt/program/train"}],
            },
        ],
        "config": {"env": {"B": "2", "A": "1"}, "workdir": "/opt/program", "labels": {"z": "1", "a": "2"}},
        "annotations": {"org.opencontainers.image.title": "trainer"},
    }


def _cli_build(work: Path, *, seed: int, umask: int, top_text: str = "v1", compressor: str = "auto") -> Path:
    _make_sources(work / "src", seed=seed, top_text=top_text)
    (work / "spec.json").write_text(json.dumps(_spec(work, seed=seed), indent=seed % 3))
    tmp = work / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(SRC_ROOT), "TMPDIR": str(tmp), "PYTHONHASHSEED": str(seed)}
    cmd = [
        sys.executable,
        "-m",
        "mlbuild.oci",
        "build",
        "--spec",
        "spec.json",
        "--output",
        "out",
        "--compressor",
        compressor,
    ]
    subprocess.run(cmd, cwd=work, env=env, check=True, preexec_fn=lambda: os.umask(umask))
    return work / "out"


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("compressor", ["zlib", "auto"])
def test_builds_are_byte_for_byte_reproducible_despite_noise(tmp_path: Path, compressor: str) -> None:
    a = _cli_build(tmp_path / "a", seed=1, umask=0o022, compressor=compressor)
    time.sleep(1.1)  # NB: a clock-dependent timestamp would now differ
    b = _cli_build(tmp_path / "elsewhere" / "b", seed=2, umask=0o077, compressor=compressor)
    assert _files(a) == _files(b)
    assert set(_files(a)) >= {"image.json", "image.tar", "layout/index.json", "layout/oci-layout"}


def test_changing_a_top_layer_file_changes_only_the_top_layer(tmp_path: Path) -> None:
    a = json.loads((_cli_build(tmp_path / "a", seed=1, umask=0o022) / "image.json").read_text())
    b = json.loads((_cli_build(tmp_path / "b", seed=1, umask=0o022, top_text="v2") / "image.json").read_text())
    assert a["layers"][0] == b["layers"][0]
    assert a["layers"][1]["digest"] != b["layers"][1]["digest"]
    assert a["manifest_digest"] != b["manifest_digest"]


def test_unchanged_layers_are_never_recompressed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _make_sources(tmp_path / "src", seed=1)
    spec = parse_spec(_spec(tmp_path, seed=1), base_dir=tmp_path)
    store = BlobStore(tmp_path / "cache")
    compressor = choose_compressor("zlib")
    first = build_image(spec, store, compressor)
    calls: list[int] = []
    real = layer_writer.gzip_stream

    def counting(*args: Any) -> None:
        calls.append(1)
        real(*args)

    monkeypatch.setattr(layer_writer, "gzip_stream", counting)
    second = build_image(spec, store, compressor)
    assert calls == []
    assert second == first
    # A different compressor is a different cache key.
    build_image(spec, store, choose_compressor("auto"))
    assert len(calls) == (0 if choose_compressor("auto").id == compressor.id else 2)


def test_building_on_a_base_layout(tmp_path: Path) -> None:
    base_out = _cli_build(tmp_path / "base", seed=1, umask=0o022)
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / "extra.txt").write_text("extra")
    spec = {
        "ref": "derived",
        "base": {"layout": str(base_out / "layout"), "ref": "trainer:1"},
        "layers": [{"name": "extra", "files": [{"src": "top/extra.txt", "dest": "/opt/extra.txt"}]}],
        "config": {"env": {"A": "override"}, "cmd": ["--help"]},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(SRC_ROOT)}
    cmd = [sys.executable, "-m", "mlbuild.oci", "build", "--spec", "spec.json", "--output", "out", "--check-sagemaker"]
    subprocess.run(cmd, cwd=tmp_path, env=env, check=True)
    base = read_layout(base_out / "layout", "trainer:1")
    derived = read_layout(tmp_path / "out" / "layout", "derived")
    assert [layer.digest for layer in derived.layers[:2]] == [layer.digest for layer in base.layers]
    assert len(derived.layers) == 3
    assert derived.config["rootfs"]["diff_ids"] == [layer.diff_id for layer in derived.layers]
    assert len(derived.config["history"]) == 3
    assert derived.env()["A"] == "override" and derived.env()["B"] == "2"
    assert derived.runtime_config["Cmd"] == ["--help"]
    assert derived.runtime_config["WorkingDir"] == "/opt/program"


def _zip_layers(tmp_path: Path, sizes: dict[str, int], max_bytes: int | None) -> dict:
    """A spec of one layer per wheel-like zip (members of the given sizes), split at `max_bytes`."""
    import zipfile

    layers = []
    for name, size in sizes.items():
        path = tmp_path / f"{name}.whl"
        with zipfile.ZipFile(path, "w") as z:
            for i in range(4):
                z.writestr(f"{name}/part{i}.bin", bytes([i]) * (size // 4))
            z.writestr(f"{name}/__init__.py", "X = 1\n")
        layer: dict[str, Any] = {
            "name": f"dep-{name}",
            "zips": [{"src": path.name, "dest": f"/opt/deps/{name}", "bytecode": "cpython-311"}],
        }
        if max_bytes:
            layer["max_bytes"] = max_bytes
        layers.append(layer)
    return {"ref": "deps", "layers": layers}


def test_a_layer_over_its_cap_is_split_by_path_and_each_part_depends_on_its_contents(tmp_path: Path) -> None:
    spec = parse_spec(_zip_layers(tmp_path, {"big": 4000, "small": 40}, max_bytes=2100), base_dir=tmp_path)
    image = build_image(spec, BlobStore(tmp_path / "store"), choose_compressor("zlib"))
    names = [layer.descriptor.annotations["org.mlbuild.layer.name"] for layer in image.layers]
    assert names == ["dep-big-1of2", "dep-big-2of2", "dep-small"]
    # Another wheel beside it changes nothing of big's parts: their digests are their contents'.
    (tmp_path / "other").mkdir()
    again = parse_spec(
        _zip_layers(tmp_path / "other", {"big": 4000, "tiny": 10}, max_bytes=2100), base_dir=tmp_path / "other"
    )
    other = build_image(again, BlobStore(tmp_path / "store2"), choose_compressor("zlib"))
    assert [layer.digest for layer in other.layers[:2]] == [layer.digest for layer in image.layers[:2]]


def test_layers_built_in_parallel_are_the_same_bytes_as_one_at_a_time(tmp_path: Path) -> None:
    spec = parse_spec(_zip_layers(tmp_path, {"a": 3000, "b": 2000, "c": 1000}, max_bytes=None), base_dir=tmp_path)
    serial = build_image(spec, BlobStore(tmp_path / "s1"), choose_compressor("zlib"), workers=1)
    parallel = build_image(spec, BlobStore(tmp_path / "s2"), choose_compressor("zlib"), workers=3)
    assert [(layer.digest, layer.diff_id) for layer in serial.layers] == [
        (layer.digest, layer.diff_id) for layer in parallel.layers
    ]
    assert serial.config_bytes() == parallel.config_bytes()


def test_more_layers_than_registries_handle_is_a_build_error_that_says_how_to_group(tmp_path: Path) -> None:
    from mlbuild.oci import build as build_module

    spec = parse_spec(
        _zip_layers(tmp_path, {f"w{i}": 8 for i in range(build_module.MAX_LAYERS + 1)}, None), base_dir=tmp_path
    )
    with pytest.raises(Exception, match=r"101 layers.*layer_split_mb"):
        build_image(spec, BlobStore(tmp_path / "store"), choose_compressor("zlib"))


def test_a_layer_worker_dies_with_its_build(tmp_path: Path) -> None:
    """Killed by Pants or Ctrl-C mid-build, the build leaves no pool worker behind."""
    script = f"""
import os, sys, time
sys.path.insert(0, {str(SRC_ROOT)!r})
from mlbuild.oci import build
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"), initializer=build._die_with_parent) as pool:
    print(pool.submit(os.getpid).result(), flush=True)
    time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    worker = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
        and os.path.exists(f"/proc/{worker}")
        and "Z" not in open(f"/proc/{worker}/stat").read().split()[2]
    ):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{worker}") or open(f"/proc/{worker}/stat").read().split()[2] == "Z"
