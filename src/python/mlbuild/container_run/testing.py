"""Helpers for this package's tests: tiny pipelines and tiny (or real) images in OCI layouts."""

from __future__ import annotations

import fcntl
import inspect
import socket
import struct
import sys
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

from mlbuild.base_image import rootfs_entries
from mlbuild.oci.blob_store import BlobStore
from mlbuild.oci.determinism import choose_compressor
from mlbuild.oci.image import Image, add_layer, set_config
from mlbuild.oci.layer import LayerEntry
from mlbuild.oci.layer_writer import write_layer
from mlbuild.oci.layout import write_layout

PIPELINE_YAML = """\
hyperparameters:
  scale: {type: float, default: 2.0}
  label: run
channels:
  train: {}
  validation: {}
"""

TRAIN_SCRIPT = """\
#!/usr/bin/python3.11
# A SageMaker training program: read /opt/ml/input, write /opt/ml/model (no shell needed).
import json, os, sys
base = "/opt/ml"
hp = json.load(open(f"{base}/input/config/hyperparameters.json"))
channels = json.load(open(f"{base}/input/config/inputdataconfig.json"))
rows = {}
for name in sorted(channels):
    folder = f"{base}/input/data/{name}"
    rows[name] = sum(len(open(os.path.join(folder, f)).read().splitlines()) for f in sorted(os.listdir(folder)))
if json.loads(hp["label"]) == "fail":
    open(f"{base}/output/failure", "w").write("DataError: label=fail was requested\\n")
    sys.exit(1)
os.makedirs(f"{base}/model", exist_ok=True)
scale = json.loads(hp["scale"])
open(f"{base}/model/model.txt", "w").write(f"scale={scale} rows={rows}\\n")
json.dump({"rows_train": rows["train"], "score": scale * rows["train"]}, open(f"{base}/model/metrics.json", "w"))
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
sandbox = {p: writable(p) for p in ["/usr/x", "/opt/ml/input/data/train/x", "/tmp/x", "/opt/ml/output/data/x"]}
sandbox["env"] = dict(os.environ)
json.dump(sandbox, open(f"{base}/model/sandbox.json", "w"))
print("trained on", rows, "as", os.getuid(), "in", os.getcwd(), flush=True)
"""


def reaches(target: str) -> bool:
    """Whether a TCP connection to `host:port` opens (the multi-host script's route-out probe)."""
    address, port = target.rsplit(":", 1)
    try:
        socket.create_connection((address, int(port)), timeout=2).close()
        return True
    except OSError:
        return False


def non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses outside 127.0.0.0/8 (SIOCGIFADDR per interface; none offline)."""
    found = []
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                reply = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
            except OSError:  # no IPv4 address on this interface
                continue
        address = socket.inet_ntoa(reply[20:24])
        if not address.startswith("127."):
            found.append(address)
    return found


# NB: hyperparameters: `probe`, space-separated host:port targets each host tries to reach;
# `wait_s`, how long the leader waits for each other host (and the others for the leader);
# `label`: `fail` makes the last host fail, `silent` makes it exit without connecting.
MULTI_HOST_TRAIN_SCRIPT = (
    """\
#!/usr/bin/python3.11
# One host of a multi-host job: the leader listens on its own address, the others connect by name.
import json, os, socket, sys, time
base = "/opt/ml"
resource = json.load(open(f"{base}/input/config/resourceconfig.json"))
hp = json.load(open(f"{base}/input/config/hyperparameters.json"))
me, hosts = resource["current_host"], resource["hosts"]
wait_s = json.loads(hp["wait_s"])
files = sorted(os.listdir(f"{base}/input/data/train"))
rows = sum(len(open(f"{base}/input/data/train/{f}").read().splitlines()) for f in files)
print("host", me, "of", hosts, "files", files, flush=True)
def fail(message, code):
    open(f"{base}/output/failure", "w").write(message + "\\n")
    sys.exit(code)
label = json.loads(hp["label"])
if label in ("fail", "silent") and me == hosts[-1]:
    if label == "silent":
        sys.exit(0)
    fail(f"DataError: {me} was told to fail", 3)
got = []
if me == hosts[0]:
    server = socket.socket()
    server.bind((socket.gethostbyname(me), 5000))
    server.listen()
    server.settimeout(wait_s)
    for _ in hosts[1:]:
        try:
            conn, peer = server.accept()
            conn.settimeout(wait_s)
            got.append([conn.recv(100).decode(), peer[0]])
        except socket.timeout:
            fail(f"TimeoutError: {me} waited {wait_s} s for the other hosts; only {sorted(n for n, _ in got)} connected", 4)
else:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            socket.create_connection((hosts[0], 5000), timeout=1).sendall(me.encode())
            break
        except OSError as e:
            if time.monotonic() > deadline:
                fail(f"TimeoutError: {me} could not connect to {hosts[0]}:5000 within {wait_s} s: {e}", 4)
            time.sleep(0.1)
"""
    + inspect.getsource(reaches)
    + """\
probe = json.loads(hp["probe"]).split()
report = {"host": me, "hostname": socket.gethostname(), "address": socket.gethostbyname(me), "files": files,
          "rows": rows, "got": sorted(got), "reached": {t: reaches(t) for t in probe}, "sm_free": "SM_HOSTS" not in os.environ}
checkpoints = f"{base}/checkpoints"
if os.path.isdir(checkpoints):  # a job with a checkpoint config: count this host's runs there
    counter = f"{checkpoints}/{me}-runs"
    runs = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
    open(counter, "w").write(str(runs))
    report["checkpoint_runs"] = runs
    report["checkpoint_config"] = json.load(open(f"{base}/input/config/checkpointconfig.json"))
report["gpus"] = sorted(n for n in os.listdir("/dev") if n.startswith("nvidia"))
report["ld_library_path"] = os.environ.get("LD_LIBRARY_PATH", "")
report["libcuda"] = open("/usr/local/nvidia/lib64/libcuda.so.1").read() if report["gpus"] else ""
json.dump(report, open(f"{base}/model/{me}.json", "w"), sort_keys=True)
if me == hosts[0]:
    json.dump({"rows_leader": rows}, open(f"{base}/model/metrics.json", "w"))
"""
)


def write_pipeline(root: Path, data: Mapping[str, Mapping[str, str]] | None = None) -> tuple[Path, Path]:
    """A pipeline.yaml and its sample data folder (channel -> file name -> text) under `root`."""
    config = root / "pipeline.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(PIPELINE_YAML)
    data_dir = root / "sample_data"
    for channel, files in (data or {"train": {"a.csv": "1\n2\n3\n"}, "validation": {"v.csv": "4\n"}}).items():
        (data_dir / channel).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (data_dir / channel / name).write_text(text)
    return config, data_dir


def write_image(
    layout_dir: Path,
    store_dir: Path,
    layers: Sequence[Iterable[LayerEntry]],
    *,
    base: Optional[Image] = None,
    entrypoint: Optional[Sequence[str]] = None,
    env: Optional[Mapping[str, str]] = None,
    workdir: Optional[str] = None,
    ref: str = "test:1",
) -> Image:
    store = BlobStore(store_dir)
    image = base or Image()
    for i, entries in enumerate(layers):
        image = add_layer(image, write_layer(entries, store, choose_compressor("auto")), created_by=f"test layer {i}")
    image = set_config(image, entrypoint=entrypoint, env=env, workdir=workdir)
    write_layout(image, layout_dir, ref)
    return image


# NB: tests that use `real_train_image` depend on this file in their BUILD target.
COMMITTED_LOCK = Path(__file__).resolve().parents[4] / "docker/debian-python3.11/packages.lock.json"


def base_layer_entries(rootfs: Path) -> list[LayerEntry]:
    """The Debian base's layer as `mlbuild.base_image` makes it: its standard library compiled."""
    return rootfs_entries(rootfs, sys.implementation.cache_tag)


def real_train_image(work: Path, ref: str = "test:1", script: str = TRAIN_SCRIPT) -> Path:
    """The layout of a REAL image, the committed Debian base plus `train` (`script`), under `work`.

    Skips where bubblewrap cannot run or the base's .debs cannot be fetched (each a failure under
    MLBUILD_REQUIRE_TOOLS=1); a lock missing from the test's sandbox always fails (a BUILD mistake).
    """
    import pytest

    from mlbuild.container_run.bwrap_probe import check_bwrap
    from mlbuild.container_run.errors import SandboxUnavailableError
    from mlbuild.debian import FetchError, build_rootfs, load_lock
    from mlbuild.tools_required import skip_or_fail

    try:
        check_bwrap()
    except SandboxUnavailableError as e:
        skip_or_fail(f"bwrap unusable: {e}")
    if not COMMITTED_LOCK.exists():
        pytest.fail(
            f"{COMMITTED_LOCK} is not in this test's sandbox: add docker/debian-python3.11:lock to its BUILD dependencies",
            pytrace=False,
        )
    try:
        rootfs = build_rootfs(load_lock(COMMITTED_LOCK), work / "base-rootfs").path
    except FetchError as e:
        skip_or_fail(f"cannot fetch the base's .debs (mirror unreachable or lock stale): {e}")
    train = [LayerEntry.file("/usr/local/bin/train", script.encode(), 0o755)]
    write_image(work / "layout", work / "blobs", [base_layer_entries(rootfs), train], workdir="/opt/program", ref=ref)
    return work / "layout"
