#!/usr/bin/env python3.11
"""Benchmark: pushing the churn image with mlbuild.registry vs `skopeo copy`, cold and warm.

    python3.11 bench/push.py [--layout DIR] [--runs 3]

A benchmark, not a test: it prints a table and exits 0 unless something fails outright.
Default layout: dist/src.python.pipelines.churn/train.oci, ref `train` (built first with
`./pants --no-pantsd package src/python/pipelines/churn:train` when missing).

Rows, all in the same run, against local Debian `docker-registry` (distribution 2.8) processes
this script starts on 127.0.0.1 and stops afterwards. Every run gets two FRESH registries (empty
storage), one for the mlbuild rows and one for the skopeo rows, so no row can reuse, mount or
dedupe a blob uploaded by an earlier row or run:

  (a) mlbuild cold:  `python3.11 -m mlbuild.registry push --json` of the layout to an empty repo.
  (b) mlbuild warm:  the same CLI push of a "code-only change" of the image to the same repo:
                     a second layout sharing every layer but the top one, which is rebuilt with
                     mlbuild.oci (one .py file in it changed), with its config and manifest.
  (c) skopeo cold:   `skopeo copy --dest-tls-verify=false oci:LAYOUT:REF docker://HOST/other:tag`
                     of the same layout to an empty repository.
  (d) skopeo warm:   skopeo copy of the code-changed layout to that repository after (c).

  lib cold / lib warm: (a) and (b) again, but as an in-process push_layout() call (how
                     mlbuild.publish calls it), to a third fresh registry: no interpreter start-up
                     or imports (about 0.2 s of the CLI rows on this machine).

Rows (a)-(d) run each tool as a fresh process (start-up counts for both). mlbuild pushes with its
defaults (3 parallel blobs, monolithic PUT, verification on: a HEAD per blob and a manifest GET
after the push). Seconds are wall-clock medians over --runs. "bytes uploaded": mlbuild's from its
PushResult (uploaded_bytes: blobs sent, manifest excluded); skopeo's is the growth of the
registry's blob storage (blobs/**/data, manifest included), shown for every row as a cross-check.
Ratios divide the mlbuild row by the skopeo row named. MB = 10^6 bytes.

Targets (from the issue): cold mlbuild <= skopeo copy time; warm mlbuild >= 10x faster than a
full skopeo copy to an empty repository. Needs docker-registry and skopeo (apt-get install -y
docker-registry skopeo).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src" / "python"))

from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.determinism import choose_compressor
from mlbuild.oci.layer import LayerEntry
from mlbuild.oci.layer_reader import iter_layer, read_member
from mlbuild.oci.layer_writer import write_layer
from mlbuild.oci.layout import read_layout, write_layout
from mlbuild.registry import push_layout

DEFAULT_LAYOUT = ROOT / "dist" / "src.python.pipelines.churn" / "train.oci"
PANTS_TARGET = "src/python/pipelines/churn:train"
ROWS = ("mlbuild cold", "mlbuild warm", "skopeo cold", "skopeo warm", "lib cold", "lib warm")


# -- inputs -------------------------------------------------------------------------------------


def ensure_layout(layout: Path) -> None:
    if (layout / "index.json").is_file():
        return
    if layout.resolve() != DEFAULT_LAYOUT.resolve():
        sys.exit(f"{layout}: not an OCI layout")
    print(f"building {PANTS_TARGET} (no layout at {layout}) ...", file=sys.stderr)
    subprocess.run(["./pants", "--no-pantsd", "package", PANTS_TARGET], cwd=ROOT, check=True)


def code_changed_layout(layout: Path, ref: str, out: Path) -> tuple[str, str]:
    """A copy of the image whose top layer is rebuilt with one .py file changed. -> (old, new) top digests."""
    image = read_layout(layout, ref)
    top = image.layers[-1]
    entries, changed = [], None
    for member, tar in iter_layer(top):
        if member.isdir():
            entries.append(LayerEntry.directory(member.name))
        elif member.issym():
            entries.append(LayerEntry.symlink(member.name, member.linkname))
        elif member.isfile():
            data = b"".join(read_member(top, tar, member))
            if changed is None and member.name.endswith(".py"):
                changed = member.name
                data += b"\n# bench/push.py: a code-only change\n"
            entries.append(LayerEntry.file(member.name, data, member.mode))
        else:
            sys.exit(f"top layer member {member.name}: unsupported type for this benchmark")
    if changed is None:
        sys.exit(f"{layout}: the top layer has no .py file to change")
    store = BlobStore(out.parent / "store")
    annotations = {k: v for k, v in top.descriptor.annotations.items() if k != "org.mlbuild.layer.compressor"}
    new_top = write_layer(entries, store, choose_compressor("auto"), annotations)
    config = copy.deepcopy(dict(image.config))
    config["rootfs"]["diff_ids"][-1] = new_top.diff_id
    write_layout(replace(image, config=config, layers=(*image.layers[:-1], new_top)), out, ref)
    print(f"code-only change: {changed} in the top layer {top.digest[:19]} -> {new_top.digest[:19]}", file=sys.stderr)
    return top.digest, new_top.digest


# -- registry -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """A fresh docker-registry on 127.0.0.1 with its own storage; stderr to a file (a PIPE fills up)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": False}},
            "http": {"addr": self.host},
        }
        (root / "config.yml").write_text(json.dumps(config))  # NB: JSON is YAML
        with open(root / "registry.log", "wb") as log:
            self.proc = subprocess.Popen(
                ["docker-registry", "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    sys.exit(f"docker-registry did not start: {(root / 'registry.log').read_text(errors='replace')}")
                time.sleep(0.05)

    def blob_bytes(self) -> int:
        blobs = self.root / "data" / "docker" / "registry" / "v2" / "blobs"
        return sum(p.stat().st_size for p in blobs.rglob("data")) if blobs.is_dir() else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the rows -----------------------------------------------------------------------------------


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout


def mlbuild_push(layout: Path, ref: str, dest: str, env: dict[str, str]) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "mlbuild.registry", "push", "--layout", str(layout), "--ref-name", ref, "--to", dest, "--json"]
    seconds, out = _timed(cmd, env)
    return seconds, json.loads(out.strip().splitlines()[-1])


def skopeo_copy(layout: Path, ref: str, dest: str, env: dict[str, str]) -> tuple[float, str]:
    cmd = ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:{ref}", f"docker://{dest}"]
    return _timed(cmd, env)


def one_run(n: int, layout: Path, changed: Path, ref: str, work: Path, env: dict[str, str]) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    ml, sk, lib = Registry(work / f"run{n}-mlbuild"), Registry(work / f"run{n}-skopeo"), Registry(work / f"run{n}-lib")
    try:
        for name, path in (("mlbuild cold", layout), ("mlbuild warm", changed)):
            before = ml.blob_bytes()
            seconds, result = mlbuild_push(path, ref, f"{ml.host}/churn/train", env)
            rows[name] = {
                "seconds": seconds, "uploaded": result["uploaded_bytes"], "growth": ml.blob_bytes() - before,
                "inner": result["seconds"], "blobs": f"{result['uploaded']} up / {result['skipped']} skip / {result['mounted']} mount",
                "digest": result["digest"],
            }
        for name, path, tag in (("skopeo cold", layout, "tag"), ("skopeo warm", changed, "tag2")):
            before = sk.blob_bytes()
            seconds, out = skopeo_copy(path, ref, f"{sk.host}/other:{tag}", env)
            growth = sk.blob_bytes() - before
            # NB: without a TTY skopeo prints "Copying blob" for every blob, skipped or not
            rows[name] = {"seconds": seconds, "uploaded": growth, "growth": growth, "inner": None, "blobs": "n/a", "digest": None}
        for name, path in (("lib cold", layout), ("lib warm", changed)):
            before = lib.blob_bytes()
            start = time.monotonic()
            result = push_layout(path, ref, f"{lib.host}/churn/train", progress=None, env=env)
            seconds = time.monotonic() - start
            rows[name] = {
                "seconds": seconds, "uploaded": result.uploaded_bytes, "growth": lib.blob_bytes() - before,
                "inner": result.seconds, "blobs": f"{result.uploaded} up / {result.skipped} skip / {result.mounted} mount",
                "digest": result.digest,
            }
    finally:
        ml.stop()
        sk.stop()
        lib.stop()
    assert rows["mlbuild cold"]["digest"] == rows["lib cold"]["digest"] and rows["mlbuild warm"]["digest"] == rows["lib warm"]["digest"]
    return rows


# -- main ---------------------------------------------------------------------------------------


def _mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", type=Path, default=DEFAULT_LAYOUT)
    parser.add_argument("--ref", default="train")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep registries' storage here (default: a temp dir, removed)")
    args = parser.parse_args()
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            sys.exit(f"needs `{tool}` (apt-get install -y docker-registry skopeo)")
    ensure_layout(args.layout)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-push-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src" / "python"), "DOCKER_CONFIG": str(work / "docker")}
    try:
        changed = work / "changed" / "layout"
        code_changed_layout(args.layout, args.ref, changed)
        image = read_layout(args.layout, args.ref)
        total = sum(layer.descriptor.size for layer in image.layers) + len(image.config_bytes())
        load_before = Path("/proc/loadavg").read_text().strip()
        runs = [one_run(n, args.layout, changed, args.ref, work, env) for n in range(1, args.runs + 1)]
        load_after = Path("/proc/loadavg").read_text().strip()
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    med = {row: statistics.median(r[row]["seconds"] for r in runs) for row in ROWS}
    print(f"\nimage {args.layout}:{args.ref}: {len(image.layers)} layers, {_mb(total)} MB of blobs; runs={args.runs}; "
          f"{os.cpu_count()} CPUs; loadavg before {load_before} / after {load_after}")
    header = f"{'row':<14}{'median s':>10}{'min s':>8}{'max s':>8}{'uploaded MB':>13}{'stored MB':>11}  {'blobs':<24}{'in-process s':>13}"
    print(header)
    print("-" * len(header))
    for row in ROWS:
        times = [r[row]["seconds"] for r in runs]
        last = runs[-1][row]
        inner = statistics.median(r[row]["inner"] for r in runs) if last["inner"] is not None else None
        print(
            f"{row:<14}{med[row]:>10.3f}{min(times):>8.3f}{max(times):>8.3f}{_mb(last['uploaded']):>13}{_mb(last['growth']):>11}"
            f"  {last['blobs']:<24}{'-' if inner is None else f'{inner:.3f}':>13}"
        )
    print()
    for who in ("mlbuild", "lib"):
        cold, warm = med[f"{who} cold"] / med["skopeo cold"], med["skopeo cold"] / med[f"{who} warm"]
        print(f"{who + ' cold':<12} / skopeo cold = {cold:5.2f} (time ratio; target <= 1.00: {'met' if cold <= 1 else 'NOT met'})")
        print(f"skopeo cold / {who + ' warm':<12} = {warm:5.1f} (speed-up;   target >= 10:   {'met' if warm >= 10 else 'NOT met'})")
        print(f"{who + ' warm':<12} / skopeo warm = {med[f'{who} warm'] / med['skopeo warm']:5.2f} (time ratio)")
    print("per-run seconds: " + "; ".join(f"{row}: " + ", ".join(f"{r[row]['seconds']:.2f}" for r in runs) for row in ROWS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
