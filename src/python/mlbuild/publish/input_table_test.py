"""The bad-input table: every case drives a real command line in-process
(`python -m mlbuild.runtime.check_config`, the runtime's `local`, `python -m mlbuild.publish`,
`./pants mlbuild` (lineage and SageMaker verbs)) and asserts the exit code, a
one-line message that names the file or field, no traceback, and nothing half-written.

It prints its totals (cases / refused / passed). Nothing here reaches AWS or a registry:
every case is refused before either would be called (AWS variables are cleared).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from mlbuild.commands import cli as commands
from mlbuild.container_run.testing import write_image
from mlbuild.lineage import build_cli
from mlbuild.lineage.testing import PIPELINE, chain
from mlbuild.oci.layer import LayerEntry
from mlbuild.publish import cli as publish_cli
from mlbuild.runtime import check_config, contract
from mlbuild.runtime import cli as runtime_cli
from mlbuild.runtime.pipeline import ADDRESS_ENV_VAR, CONFIG_ENV_VAR, MODULE_ENV_VAR

GOOD_CONFIG = """\
hyperparameters:
  depth: {type: int, default: 3, min: 1, max: 8}
  rate: 0.1
  loss: {type: str, default: log_loss, choices: [log_loss, hinge]}
  verbose: false
channels:
  train: {}
sagemaker:
  role: arn:aws:iam::123456789012:role/Training
  output_path: s3://demo-bucket/models/
  region: us-east-1
"""
PIPELINE_MODULE = """\
def load(ctx): return [1.0, 2.0]
def train(ctx, features): return {"depth": ctx.hp["depth"]}
def evaluate(ctx, model, features): return {"train:rows": len(features)}
"""
ADDRESS = "src/python/pipelines/toy:train"
DIGEST = "sha256:" + "ab" * 32
IMAGE_URI = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/toy@{DIGEST}"
_packages = itertools.count()


@dataclass
class World:
    """What the cases point at: a good config, data, image layout and lineage store, plus scratch space."""

    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    config: Path = field(init=False)
    data: Path = field(init=False)
    layout: Path = field(init=False)
    store: Path = field(init=False)
    runs: Path = field(init=False)
    reports: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config = self.file("pipeline.yaml", GOOD_CONFIG)
        self.data = self.tmp / "data"
        (self.data / "train").mkdir(parents=True)
        (self.data / "train" / "rows.csv").write_text("1\n2\n")
        self.layout = self.tmp / "layout"
        write_image(
            self.layout,
            self.tmp / "blobs",
            [[LayerEntry.file("/usr/local/bin/train", b"#!/bin/true\n", 0o755)]],
            ref="toy:1",
        )
        self.store = self.tmp / "lineage"
        self.chain = chain(self.store)
        self.runs = self.tmp / "runs"
        self.reports = self.tmp / "reports"
        self.pipeline(GOOD_CONFIG.encode())

    def file(self, name: str, text: str | bytes) -> Path:
        path = self.tmp / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path

    def pipeline(self, config: Optional[bytes], config_dir: bool = False) -> None:
        """A pipeline package on sys.path, its config packaged beside it, named in the environment."""
        package = f"input_table_pipeline_{next(_packages)}"
        root = self.tmp / "src" / package
        root.mkdir(parents=True)
        (root / "__init__.py").write_text("")
        (root / "pipeline.py").write_text(PIPELINE_MODULE)
        if config_dir:
            (root / "pipeline.yaml").mkdir()
        elif config is not None:
            (root / "pipeline.yaml").write_bytes(config)
        self.monkeypatch.syspath_prepend(str(self.tmp / "src"))
        self.monkeypatch.setenv(MODULE_ENV_VAR, f"{package}.pipeline")
        self.monkeypatch.setenv(CONFIG_ENV_VAR, "pipeline.yaml")
        self.monkeypatch.setenv(ADDRESS_ENV_VAR, ADDRESS)

    def record(self, body: bytes, inbox: bool = False) -> Path:
        """A file in the store (or the package inbox) named by the sha256 of `body`."""
        folder = (self.tmp / "inbox" if inbox else self.store) / "records"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(body).hexdigest()}.json"
        path.write_bytes(body)
        return path


Main = Callable[[List[str]], int]
Setup = Callable[[World], Tuple[Main, List[str]]]


@dataclass(frozen=True)
class Case:
    area: str
    name: str
    setup: Setup
    code: int
    says: str  # NB: the message's line must contain this (the file or field, and the problem)
    says_file: bool = True  # the line also names the file involved (where there is one)


def check(text: str | bytes, name: str = "pipeline.yaml") -> Setup:
    def setup(w: World) -> Tuple[Main, List[str]]:
        return check_config.main, [str(w.file(name, text))]

    return setup


def run_local(
    *assignments: str, config: Optional[bytes] = None, config_dir: bool = False, data: Optional[str] = None
) -> Setup:
    def setup(w: World) -> Tuple[Main, List[str]]:
        if config is not None or config_dir:
            w.pipeline(config, config_dir)
        data_dir = w.tmp / data if data else w.data
        return runtime_cli.main, ["local", "--data-dir", str(data_dir), "--runs-dir", str(w.runs), *assignments]

    return setup


def container(**files: str | bytes) -> Setup:
    """The image's `train` (no arguments) on an /opt/ml laid out like SageMaker's, with `files` replaced."""

    def setup(w: World) -> Tuple[Main, List[str]]:
        base = w.tmp / "opt" / "ml"
        (base / "input" / "data" / "train").mkdir(parents=True)
        (base / "input" / "data" / "train" / "rows.csv").write_text("1\n")
        laid_out = {
            contract.HYPERPARAMETERS_FILE: "{}",
            contract.INPUT_DATA_CONFIG_FILE: json.dumps({"train": {"TrainingInputMode": "File"}}),
            contract.RESOURCE_CONFIG_FILE: json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}),
        }
        for name, text in {**laid_out, **{getattr(contract, k): v for k, v in files.items()}}.items():
            path = base / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if text == "<dir>":
                path.mkdir(parents=True)
            else:
                path.write_bytes(text.encode() if isinstance(text, str) else text)
        w.monkeypatch.setenv(contract.BASE_DIR_ENV_VAR, str(base))
        return runtime_cli.main, ["train"]

    return setup


def publish(
    *extra: str, text: Optional[str | bytes] = None, env: Optional[Dict[str, str]] = None, **paths: Optional[str]
) -> Setup:
    def setup(w: World) -> Tuple[Main, List[str]]:
        for name, setting in (env or {}).items():
            w.monkeypatch.setenv(name, setting)
        config_path = w.config if text is None else w.file("publish.yaml", text)
        argv = {
            "--layout": str(w.layout),
            "--ref-name": "toy:1",
            "--config": str(config_path),
            "--address": ADDRESS,
            "--data-dir": str(w.data),
            "--pex-sha256": "e" * 64,
            "--report-dir": str(w.reports),
            "--local-root": str(w.tmp / "local"),
            "--backend": "local",
        }
        for key, value in paths.items():
            flag = "--" + key.replace("_", "-")
            if value is None:
                argv.pop(flag)
            else:
                argv[flag] = value.format(tmp=w.tmp, config=w.config)
        return publish_cli.main, [*itertools.chain.from_iterable(argv.items()), *extra]

    return setup


def lineage(*argv: str, body: Optional[bytes] = None, record: Optional[bytes] = None, inbox: bool = False) -> Setup:
    def setup(w: World) -> Tuple[Main, List[str]]:
        if record is not None:
            w.record(record, inbox)
            if inbox:
                w.monkeypatch.setenv("MLBUILD_LINEAGE_INBOX", str(w.tmp / "inbox"))
        args = [a.format(tmp=w.tmp, body=w.file("body.json", body or b"")) for a in argv]
        # NB: verify-provenance reads no store
        root = [] if inbox or args[0] == "verify-provenance" else ["--lineage-dir", str(w.store)]
        if inbox:
            w.monkeypatch.setenv("MLBUILD_LINEAGE_DIR", str(w.store))
        if args[0] == "record":  # NB: the build's plumbing, not a user verb
            return build_cli.main, [*root, *args]
        return commands.main, [*args, *root]

    return setup


def edited_record(w: World) -> Tuple[Main, List[str]]:
    path = w.store / "records" / f"{w.chain.run.id}.json"
    path.write_bytes(path.read_bytes().replace(b"0.9", b"0.99"))
    return commands.main, ["runs", "--lineage-dir", str(w.store)]


def sagemaker(*argv: str, config: Optional[str | bytes] = None, env: Optional[Dict[str, str]] = None) -> Setup:
    def setup(w: World) -> Tuple[Main, List[str]]:
        for name, setting in (env or {}).items():
            w.monkeypatch.setenv(name, setting)
        config_path = w.file("submit.yaml", SUBMIT_CONFIG if config is None else config)
        return commands.main, [a.format(config=config_path, tmp=w.tmp) for a in argv]

    return setup


def submit(
    *extra: str, config: Optional[str | bytes] = None, env: Optional[Dict[str, str]] = None, image: str = IMAGE_URI
) -> Setup:
    return sagemaker(
        "submit",
        "--config",
        "{config}",
        "--image-uri",
        image,
        "--pipeline-address",
        ADDRESS,
        "--git-sha",
        "0" * 40,
        "--pex-sha256",
        "e" * 64,
        *extra,
        config=config,
        env=env,
    )


def config_with(section: str) -> str:
    return (
        GOOD_CONFIG.replace("sagemaker:\n", section + "\nsagemaker:\n", 1)
        if not section.startswith("  ")
        else GOOD_CONFIG + section
    )


SUBMIT_CONFIG = GOOD_CONFIG.replace("  train: {}\n", "  train: {s3: 's3://demo-bucket/train/'}\n")
SM = "sagemaker:\n  role: arn:aws:iam::123456789012:role/Training\n"
RECORD = {"kind": "run", "pipeline": PIPELINE, "created": "2024-05-01T10:00:00Z", "schema": 1}


def body(**fields: object) -> bytes:
    return json.dumps({**RECORD, **fields}, sort_keys=True, separators=(",", ":")).encode()


CASES: List[Case] = [
    # --- pipeline.yaml (python -m mlbuild.runtime.check_config, what `pants package` runs first) ---
    Case("config", "malformed YAML", check("hyperparameters: [1, 2"), 2, "malformed YAML at line 1"),
    Case(
        "config",
        "unknown top-level key",
        check("hyperparamters: {}"),
        2,
        "`hyperparamters`: unknown key. Fix: did you mean `hyperparameters`?",
    ),
    Case("config", "a list, not a mapping", check("- 1\n"), 2, "expected a mapping, got list"),
    Case("config", "a bare scalar", check("42\n"), 2, "expected a mapping, got int 42"),
    Case("config", "python tag", check("hyperparameters: !!python/object:os.system {}\n"), 2, "malformed YAML"),
    Case(
        "config",
        "duplicate hyperparameter",
        check("hyperparameters:\n  depth: 3\n  depth: 5\n"),
        2,
        "key 'depth' appears twice in one mapping (lines 2 and 3)",
    ),
    Case(
        "config",
        "duplicate top-level key",
        check("channels: {}\nchannels: {train: {}}\n"),
        2,
        "key 'channels' appears twice",
    ),
    Case(
        "config",
        "duplicate nested key",
        check(SM + "  role: arn:aws:iam::123456789012:role/Other\n"),
        2,
        "key 'role' appears twice",
    ),
    Case(
        "config",
        "default of the wrong type",
        check("hyperparameters: {depth: {type: int, default: 2.5}}"),
        2,
        "`hyperparameters.depth.default`: expected int, got float 2.5",
    ),
    Case(
        "config",
        "bool default for an int",
        check("hyperparameters: {depth: {type: int, default: true}}"),
        2,
        "`hyperparameters.depth.default`: expected int, got bool",
    ),
    Case(
        "config",
        "unknown type",
        check("hyperparameters: {depth: {type: integer, default: 2}}"),
        2,
        "`hyperparameters.depth.type`: expected one of int, float, bool, str",
    ),
    Case(
        "config",
        "missing default",
        check("hyperparameters: {depth: {type: int}}"),
        2,
        "`hyperparameters.depth.default`: missing",
    ),
    Case(
        "config",
        "default above max",
        check("hyperparameters: {depth: {type: int, default: 9, max: 8}}"),
        2,
        "'depth' is 9, above its max 8.0",
    ),
    Case(
        "config",
        "default below min",
        check("hyperparameters: {rate: {type: float, default: 0.0, min: 0.1}}"),
        2,
        "'rate' is 0.0, below its min 0.1",
    ),
    Case(
        "config",
        "NaN default bypassing min/max",
        check("hyperparameters: {rate: {type: float, default: .nan, min: 0, max: 1}}"),
        2,
        "`hyperparameters.rate.default`: expected a finite number, got nan",
    ),
    Case(
        "config",
        "infinite shorthand default",
        check("hyperparameters: {rate: .inf}"),
        2,
        "`hyperparameters.rate`: expected a finite number, got inf",
    ),
    Case(
        "config",
        "NaN bound",
        check("hyperparameters: {rate: {type: float, default: 0.5, max: .nan}}"),
        2,
        "`hyperparameters.rate.max`: expected a finite number",
    ),
    Case(
        "config",
        "min above max",
        check("hyperparameters: {depth: {type: int, default: 3, min: 5, max: 1}}"),
        2,
        "`hyperparameters.depth.min`: 5.0 is above max 1.0",
    ),
    Case(
        "config",
        "bounds on a string",
        check("hyperparameters: {loss: {type: str, default: a, min: 1}}"),
        2,
        "`hyperparameters.loss.min`: bounds only apply to int and float",
    ),
    Case(
        "config",
        "empty choices",
        check("hyperparameters: {loss: {type: str, default: a, choices: []}}"),
        2,
        "`hyperparameters.loss.choices`: expected a non-empty list",
    ),
    Case(
        "config",
        "default not a choice",
        check("hyperparameters: {loss: {type: str, default: a, choices: [b, c]}}"),
        2,
        "'loss' is 'a', not one of ['b', 'c']",
    ),
    Case(
        "config",
        "choice of the wrong type",
        check("hyperparameters: {depth: {type: int, default: 1, choices: [1, two]}}"),
        2,
        "`hyperparameters.depth.choices`: expected int, got str 'two'",
    ),
    Case(
        "config",
        "a list as a hyperparameter",
        check("hyperparameters: {depth: [1]}"),
        2,
        "`hyperparameters.depth`: expected a default value",
    ),
    Case(
        "config",
        "null hyperparameter",
        check("hyperparameters: {depth: null}"),
        2,
        "`hyperparameters.depth`: expected a default value or {type, default}, got nothing (null)",
    ),
    Case(
        "config",
        "bad hyperparameter name",
        check("hyperparameters: {2bad: 1}"),
        2,
        "`hyperparameters.2bad`: not a valid hyperparameter name",
    ),
    Case(
        "config",
        "unknown hyperparameter key",
        check("hyperparameters: {depth: {type: int, default: 1, maximum: 3}}"),
        2,
        "`hyperparameters.depth.maximum`: unknown key. Fix: did you mean `max`?",
    ),
    Case(
        "config",
        "channel s3 not s3",
        check("channels: {train: {s3: 'http://x/y'}}"),
        2,
        "`channels.train.s3`: expected an s3:// URI",
    ),
    Case(
        "config",
        "channel s3 without bucket",
        check("channels: {train: {s3: 's3://'}}"),
        2,
        "`channels.train.s3`: 's3://' names no bucket",
    ),
    Case(
        "config",
        "channel s3 bucket with capitals",
        check("channels: {train: {s3: 's3://Demo/x/'}}"),
        2,
        "`channels.train.s3`: 'Demo' in 's3://Demo/x/' is not a valid S3 bucket name",
    ),
    Case(
        "config",
        "channel local outside",
        check("channels: {train: {local: ../elsewhere}}"),
        2,
        "`channels.train.local`: '../elsewhere' leaves the sample data folder",
    ),
    Case(
        "config",
        "channel local absolute",
        check("channels: {train: {local: /etc}}"),
        2,
        "`channels.train.local`: '/etc' leaves the sample data folder",
    ),
    Case(
        "config",
        "channel input mode",
        check("channels: {train: {input_mode: Stream}}"),
        2,
        "`channels.train.input_mode`: expected one of File, Pipe, FastFile",
    ),
    Case(
        "config",
        "channel distribution",
        check("channels: {train: {distribution: Sharded}}"),
        2,
        "`channels.train.distribution`: expected one of FullyReplicated, ShardedByS3Key",
    ),
    Case(
        "config",
        "channel name",
        check("channels: {'tr ain': {}}"),
        2,
        "`channels.tr ain`: not a valid SageMaker channel name",
    ),
    Case("config", "channels as a list", check("channels: [train]"), 2, "`channels`: expected a mapping, got list"),
    Case(
        "config",
        "channel key typo",
        check("channels: {train: {contenttype: x}}"),
        2,
        "`channels.train.contenttype`: unknown key. Fix: did you mean `content_type`?",
    ),
    Case(
        "config", "role not an ARN", check("sagemaker: {role: admin}"), 2, "`sagemaker.role`: expected an IAM role ARN"
    ),
    Case(
        "config",
        "instance type",
        check("sagemaker: {instance_type: m5.large}"),
        2,
        "`sagemaker.instance_type`: expected an ml.* instance type",
    ),
    Case(
        "config",
        "instance count 0",
        check("sagemaker: {instance_count: 0}"),
        2,
        "`sagemaker.instance_count`: must be between 1 and 1000, got 0",
    ),
    Case(
        "config",
        "instance count as a string",
        check("sagemaker: {instance_count: '2'}"),
        2,
        "`sagemaker.instance_count`: expected int, got str '2'",
    ),
    Case(
        "config",
        "volume size overflow",
        check("sagemaker: {volume_size_gb: 99999999999999999999}"),
        2,
        "`sagemaker.volume_size_gb`: must be between 1 and 16384, got 99999999999999999999",
    ),
    Case(
        "config",
        "negative volume size",
        check("sagemaker: {volume_size_gb: -1}"),
        2,
        "`sagemaker.volume_size_gb`: must be between 1 and 16384",
    ),
    Case(
        "config",
        "runtime over 28 days",
        check("sagemaker: {max_runtime_seconds: 2419201}"),
        2,
        "`sagemaker.max_runtime_seconds`: must be between 1 and 2419200",
    ),
    Case(
        "config",
        "max wait 0",
        check("sagemaker: {max_wait_seconds: 0}"),
        2,
        "`sagemaker.max_wait_seconds`: must be between 1 and 2419200",
    ),
    Case(
        "config",
        "spot wait below runtime",
        check("sagemaker: {spot: true, max_wait_seconds: 10}"),
        2,
        "`sagemaker.max_wait_seconds`: must be at least max_runtime_seconds",
    ),
    Case(
        "config",
        "spot not a bool",
        check("sagemaker: {spot: maybe}"),
        2,
        "`sagemaker.spot`: expected bool, got str 'maybe'",
    ),
    Case(
        "config",
        "output path s3:// only",
        check("sagemaker: {output_path: 's3://'}"),
        2,
        "`sagemaker.output_path`: 's3://' names no bucket",
    ),
    Case(
        "config",
        "output path bad bucket",
        check("sagemaker: {output_path: 's3://My_Bucket/m/'}"),
        2,
        "`sagemaker.output_path`: 'My_Bucket' in 's3://My_Bucket/m/' is not a valid S3 bucket name",
    ),
    Case(
        "config",
        "output path IP bucket",
        check("sagemaker: {output_path: 's3://10.0.0.1/m/'}"),
        2,
        "`sagemaker.output_path`: '10.0.0.1' in",
    ),
    Case(
        "config",
        "output path short bucket",
        check("sagemaker: {output_path: 's3://ab/m/'}"),
        2,
        "`sagemaker.output_path`: 'ab' in",
    ),
    Case(
        "config",
        "output path not s3",
        check("sagemaker: {output_path: '/tmp/models'}"),
        2,
        "`sagemaker.output_path`: expected an s3:// URI",
    ),
    Case(
        "config",
        "checkpoint bucket with ..",
        check("sagemaker: {checkpoint_s3_uri: 's3://a..b/c'}"),
        2,
        "`sagemaker.checkpoint_s3_uri`: 'a..b' in",
    ),
    Case(
        "config",
        "region not a region",
        check("sagemaker: {region: 'not a region!'}"),
        2,
        "`sagemaker.region`: 'not a region!' is not an AWS region code",
    ),
    Case(
        "config",
        "region as a number",
        check("sagemaker: {region: 1}"),
        2,
        "`sagemaker.region`: expected str, got int 1",
    ),
    Case(
        "config",
        "subnets without groups",
        check("sagemaker: {subnets: [a]}"),
        2,
        "VPC config needs both `subnets` and `security_group_ids`",
    ),
    Case(
        "config",
        "subnets not a list",
        check("sagemaker: {subnets: subnet-1, security_group_ids: [sg-1]}"),
        2,
        "`sagemaker.subnets`: expected a list of strings",
    ),
    Case(
        "config",
        "repository name",
        check("sagemaker: {image_repository: Churn}"),
        2,
        "`sagemaker.image_repository`: 'Churn' is not a valid repository name",
    ),
    Case(
        "config",
        "backend",
        check("sagemaker: {backend: cloud}"),
        2,
        "`sagemaker.backend`: expected one of auto, local, aws",
    ),
    Case(
        "config",
        "sagemaker key typo",
        check("sagemaker: {instance_typ: ml.m5.large}"),
        2,
        "`sagemaker.instance_typ`: unknown key. Fix: did you mean `instance_type`?",
    ),
    Case(
        "config",
        "metrics not a list",
        check("metrics: validation:auc"),
        2,
        "`metrics`: expected a list of metric names",
    ),
    Case(
        "config",
        "not UTF-8",
        check(b"hyperparameters: {rate: 0.1}\n# caf\xe9\n"),
        2,
        "not UTF-8 text (byte 34 is 0xe9)",
    ),
    Case("config", "UTF-16", check("hyperparameters: {}\n".encode("utf-16")), 2, "not UTF-8 text (byte 0 is 0xff)"),
    Case("config", "a directory", lambda w: (check_config.main, [str(w.tmp)]), 2, "is a directory, not a config file"),
    Case(
        "config", "missing file", lambda w: (check_config.main, [str(w.tmp / "nope.yaml")]), 2, "config file not found"
    ),
    Case(
        "config",
        "no argument",
        lambda w: (check_config.main, []),
        2,
        "usage: python -m mlbuild.runtime.check_config PATH",
        says_file=False,
    ),
    # --- hyperparameter overrides (`pants run <pipeline> -- name=value`: the runtime's `local`) ---
    Case(
        "overrides",
        "unknown name",
        run_local("dept=4"),
        2,
        "unknown hyperparameter 'dept' (known: depth, loss, rate, verbose). Fix: did you mean 'depth'?",
        says_file=False,
    ),
    Case(
        "overrides",
        "not an int",
        run_local("depth=abc"),
        2,
        "hyperparameter 'depth' must be int, got 'abc'",
        says_file=False,
    ),
    Case(
        "overrides",
        "a fraction for an int",
        run_local("depth=3.5"),
        2,
        "hyperparameter 'depth' must be int, got '3.5'",
        says_file=False,
    ),
    Case(
        "overrides",
        "NaN float",
        run_local("rate=nan"),
        2,
        "hyperparameter 'rate' must be float, got 'nan'",
        says_file=False,
    ),
    Case(
        "overrides",
        "infinite float",
        run_local("rate=-inf"),
        2,
        "hyperparameter 'rate' must be float, got '-inf'",
        says_file=False,
    ),
    Case(
        "overrides",
        "not a bool",
        run_local("verbose=maybe"),
        2,
        "hyperparameter 'verbose' must be bool, got 'maybe'",
        says_file=False,
    ),
    Case(
        "overrides",
        "above max",
        run_local("depth=9"),
        2,
        "hyperparameter 'depth' is 9, above its max 8.0",
        says_file=False,
    ),
    Case(
        "overrides",
        "below min",
        run_local("depth=0"),
        2,
        "hyperparameter 'depth' is 0, below its min 1.0",
        says_file=False,
    ),
    Case(
        "overrides",
        "not a choice",
        run_local("loss=hinged"),
        2,
        "hyperparameter 'loss' is 'hinged', not one of ['log_loss', 'hinge']",
        says_file=False,
    ),
    Case(
        "overrides",
        "bare name",
        run_local("depth"),
        2,
        "'depth' is not a hyperparameter override. Fix: write name=value, e.g. depth=3.",
        says_file=False,
    ),
    Case("overrides", "no name", run_local("=5"), 2, "'=5' is not a hyperparameter override", says_file=False),
    Case(
        "overrides",
        "given twice",
        run_local("depth=3", "depth=5"),
        2,
        "'depth' is given twice (depth=3 and depth=5). Fix: give it once.",
        says_file=False,
    ),
    Case(
        "overrides",
        "given twice, two spellings",
        run_local("max-depth=3", "max_depth=5"),
        2,
        "'max_depth' is given twice",
        says_file=False,
    ),
    Case("overrides", "missing channel data", run_local(data="no-data"), 2, "`channels.train`: local data directory"),
    Case(
        "overrides",
        "packaged config not UTF-8",
        run_local(config=b"hyperparameters: {rate: 0.1}\n# \xff\n"),
        2,
        "pipeline.yaml: not UTF-8 text",
    ),
    Case(
        "overrides",
        "packaged config is a directory",
        run_local(config_dir=True),
        2,
        "pipeline.yaml: is a directory, not a config file",
    ),
    Case(
        "overrides",
        "packaged config with a duplicate key",
        run_local(config=b"hyperparameters:\n  a: 1\n  a: 2\n"),
        2,
        "pipeline.yaml: key 'a' appears twice",
    ),
    # --- what SageMaker hands the image's `train` (/opt/ml/input/config/*.json) ---
    Case(
        "container",
        "hyperparameters a list",
        container(HYPERPARAMETERS_FILE="[1]"),
        2,
        "hyperparameters.json: must be a JSON object of string to string",
    ),
    Case(
        "container",
        "hyperparameter not a string",
        container(HYPERPARAMETERS_FILE='{"depth": 3}'),
        2,
        "hyperparameters.json: must be a JSON object of string to string",
    ),
    Case(
        "container",
        "hyperparameters not JSON",
        container(HYPERPARAMETERS_FILE="{depth"),
        2,
        "hyperparameters.json: not valid JSON",
    ),
    Case(
        "container",
        "hyperparameters not UTF-8",
        container(HYPERPARAMETERS_FILE=b'{"depth": "\xff"}'),
        2,
        "hyperparameters.json: not UTF-8 (byte 11)",
    ),
    Case(
        "container",
        "hyperparameters a directory",
        container(HYPERPARAMETERS_FILE="<dir>"),
        2,
        "hyperparameters.json: unreadable",
    ),
    Case(
        "container",
        "hyperparameter out of range",
        container(HYPERPARAMETERS_FILE='{"depth": "99"}'),
        2,
        "hyperparameters.json: hyperparameter 'depth' is 99, above its max 8.0",
    ),
    Case(
        "container",
        "hyperparameter unknown",
        container(HYPERPARAMETERS_FILE='{"dpeth": "3"}'),
        2,
        "hyperparameters.json: unknown hyperparameter 'dpeth'",
    ),
    Case(
        "container",
        "input data config a list",
        container(INPUT_DATA_CONFIG_FILE='["train"]'),
        2,
        "inputdataconfig.json: must be a JSON object of channel name to object, got list",
    ),
    Case(
        "container",
        "input data config of strings",
        container(INPUT_DATA_CONFIG_FILE='{"train": "File"}'),
        2,
        "inputdataconfig.json: must be a JSON object of channel name to object",
    ),
    Case(
        "container",
        "resource config a string",
        container(RESOURCE_CONFIG_FILE='"algo-1"'),
        2,
        "resourceconfig.json: must be a JSON object of name to value, got str",
    ),
    Case(
        "container",
        "a channel without data",
        container(INPUT_DATA_CONFIG_FILE='{"train": {}, "test": {}}'),
        2,
        "channel 'test'",
    ),
    # --- publish arguments (`pants publish`: python -m mlbuild.publish) ---
    Case(
        "publish",
        "layout not built",
        publish(layout="{tmp}/no-layout"),
        2,
        "not an OCI image layout (no index.json); the image was not built",
    ),
    Case("publish", "unknown image ref", publish(ref="toy:2"), 2, "no image named 'toy:2' in index.json"),
    Case("publish", "config not UTF-8", publish(text=b"channels: {}\n\xfe\n"), 2, "publish.yaml: not UTF-8 text"),
    Case("publish", "config is a directory", publish(config="{tmp}"), 2, "is a directory, not a config file"),
    Case("publish", "config missing", publish(config="{tmp}/none.yaml"), 2, "none.yaml: config file not found"),
    Case(
        "publish",
        "config with output_path s3://",
        publish(text=GOOD_CONFIG.replace("s3://demo-bucket/models/", "s3://")),
        2,
        "`sagemaker.output_path`: 's3://' names no bucket",
    ),
    Case(
        "publish",
        "config region not a region",
        publish(text=GOOD_CONFIG.replace("us-east-1", "not a region!")),
        2,
        "`sagemaker.region`: 'not a region!' is not an AWS region code",
    ),
    Case(
        "publish", "data folder lacks a channel", publish(data_dir="{tmp}"), 2, "`channels.train`: local data directory"
    ),
    Case("publish", "override repeated", publish("depth=3", "depth=5"), 2, "'depth' is given twice", says_file=False),
    Case(
        "publish", "override unknown", publish("max_depht=3"), 2, "unknown hyperparameter 'max_depht'", says_file=False
    ),
    Case(
        "publish", "override out of range", publish("depth=99"), 2, "'depth' is 99, above its max 8.0", says_file=False
    ),
    Case("publish", "report dir is a file", publish(report_dir="{config}"), 2, "--report-dir"),
    Case("publish", "local root is a file", publish(local_root="{config}"), 2, "--local-root"),
    Case(
        "publish",
        "unknown backend",
        publish(backend="cloud"),
        2,
        "argument --backend: invalid choice: 'cloud'",
        says_file=False,
    ),
    Case(
        "publish",
        "no --layout",
        publish(layout=None),
        2,
        "the following arguments are required: --layout",
        says_file=False,
    ),
    Case(
        "publish",
        "aws without a region",
        publish(backend="aws", text=GOOD_CONFIG.replace("  region: us-east-1\n", "")),
        2,
        "`sagemaker.region` (or AWS_REGION) missing",
    ),
    Case(
        "publish",
        "aws with AWS_REGION not a region",
        publish(backend="aws", text=GOOD_CONFIG.replace("  region: us-east-1\n", ""), env={"AWS_REGION": "us east"}),
        2,
        "AWS_REGION: 'us east' is not an AWS region code",
        says_file=False,
    ),
    # --- the lineage store and its CLI (./pants mlbuild; record: mlbuild.lineage.build_cli) ---
    Case(
        "lineage",
        "record body a JSON list",
        lineage("record", "--kind", "run", "--record-file", "{body}", body=b"[1]"),
        2,
        "a record body must be a JSON object",
    ),
    Case(
        "lineage",
        "record body not JSON",
        lineage("record", "--kind", "run", "--record-file", "{body}", body=b"{kind"),
        2,
        "record body is not valid JSON",
    ),
    Case(
        "lineage",
        "record body not UTF-8",
        lineage("record", "--kind", "run", "--record-file", "{body}", body=b'{"kind": "\xff"}'),
        2,
        "body.json",
    ),
    Case(
        "lineage",
        "record metrics of the wrong type",
        lineage("record", "--kind", "run", "--record-file", "{body}", body=body(metrics={"auc": "high"})),
        2,
        "record.metrics.auc: expected a number",
        says_file=False,
    ),
    Case(
        "lineage",
        "record job a string",
        lineage("record", "--kind", "run", "--record-file", "{body}", body=body(job="j")),
        2,
        "record.job: expected an object",
        says_file=False,
    ),
    Case(
        "lineage",
        "record unknown field",
        lineage("record", "--kind", "run", "--record-file", "{body}", body=body(colour="red")),
        2,
        "record: unknown field(s) colour",
        says_file=False,
    ),
    Case(
        "lineage",
        "record bad time",
        lineage("record", "--kind", "run", "--record-file", "{body}", body=body(created="yesterday")),
        2,
        "record.created: 'yesterday' is not an ISO 8601 time",
        says_file=False,
    ),
    Case(
        "lineage",
        "record bad digest",
        lineage(
            "record", "--kind", "run", "--record-file", "{body}", body=body(image={"manifest_digest": "sha256:xyz"})
        ),
        2,
        "record.image.manifest_digest",
        says_file=False,
    ),
    Case(
        "lineage",
        "record kind mismatch",
        lineage("record", "--kind", "package", "--record-file", "{body}", body=body()),
        2,
        "`kind` is 'run' but --kind is 'package'",
    ),
    Case(
        "lineage",
        "record file missing",
        lineage("record", "--kind", "run", "--record-file", "{tmp}/none.json"),
        2,
        "none.json: cannot read record body",
    ),
    Case(
        "lineage",
        "run record without pipeline",
        lineage("record", "--kind", "run", "--run-dir", "{tmp}"),
        2,
        "--pipeline is required",
        says_file=False,
    ),
    Case(
        "lineage",
        "unknown hash",
        lineage("inspect", "f" * 64, "--local-only"),
        2,
        "no lineage record mentions",
        says_file=False,
    ),
    Case(
        "lineage",
        "a word, not a hash",
        lineage("inspect", "churnish"),
        2,
        "'churnish' is neither a record id or digest prefix",
        says_file=False,
    ),
    Case(
        "lineage", "diff of an unknown record", lineage("diff", "a" * 12, "b" * 12), 2, "aaaaaaaaaaaa", says_file=False
    ),
    Case(
        "lineage",
        "runs of an unknown pipeline",
        lineage("runs", "nope:nope"),
        2,
        "no runs of 'nope:nope'",
        says_file=False,
    ),
    Case("lineage", "unknown subcommand", lineage("inspekt", "x"), 2, "invalid choice: 'inspekt'", says_file=False),
    Case(
        "lineage",
        "verify-provenance without a subject",
        lineage("verify-provenance"),
        2,
        "give --digest, --manifest, --image-json or --image",
        says_file=False,
    ),
    Case("lineage", "corrupt: edited record", edited_record, 0, "contents hash to"),
    Case(
        "lineage",
        "corrupt: a JSON list",
        lineage("runs", record=b"[1, 2]"),
        0,
        "not a lineage record (record: expected a JSON object, got a JSON list.)",
    ),
    Case("lineage", "corrupt: a JSON string", lineage("runs", record=b'"run"'), 0, "got a JSON str"),
    Case("lineage", "corrupt: not JSON", lineage("runs", record=b"{half"), 0, "not a lineage record (record: not JSON"),
    Case(
        "lineage",
        "corrupt: binary",
        lineage("runs", record=b"\x00\xff\xfe"),
        0,
        "not a lineage record (record: not JSON",
    ),
    Case(
        "lineage",
        "corrupt: metrics a string",
        lineage("runs", record=body(metrics="0.9")),
        0,
        "record.metrics: expected an object",
    ),
    Case(
        "lineage",
        "corrupt: metric not a number",
        lineage("runs", record=body(metrics={"auc": [1]})),
        0,
        "record.metrics.auc: expected a number",
    ),
    Case(
        "lineage",
        "corrupt: data not a list",
        lineage("runs", record=body(data={"name": "train"})),
        0,
        "record.data: expected a list",
    ),
    Case("lineage", "corrupt: data a number", lineage("runs", record=body(data=5)), 0, "record.data: expected a list"),
    Case(
        "lineage",
        "corrupt: a channel without a name",
        lineage("runs", record=body(data=[{"uri": "x"}])),
        0,
        "record.data",
    ),
    Case("lineage", "corrupt: parents not ids", lineage("runs", record=body(parents=[1])), 0, "record.parents"),
    Case(
        "lineage",
        "corrupt: hyperparameters a list",
        lineage("runs", record=body(hyperparameters=["a"])),
        0,
        "record.hyperparameters",
    ),
    Case("lineage", "corrupt: pipeline a number", lineage("runs", record=body(pipeline=7)), 0, "record.pipeline"),
    Case(
        "lineage",
        "corrupt: unknown kind",
        lineage("runs", record=body(kind="train")),
        0,
        "record.kind: 'train' is not one of",
    ),
    Case(
        "lineage", "corrupt: schema 2", lineage("runs", record=body(schema=2)), 0, "record.schema: 2 is not supported"
    ),
    Case(
        "lineage",
        "corrupt, strict: a JSON list",
        lineage("runs", "--strict", record=b"[1, 2]"),
        3,
        "not a lineage record",
    ),
    Case(
        "lineage", "corrupt, strict: not JSON", lineage("runs", "--strict", record=b"{half"), 3, "not a lineage record"
    ),
    Case(
        "lineage",
        "corrupt, strict: wrong types",
        lineage("inspect", "churn", "--strict", record=body(job="j")),
        3,
        "record.job: expected an object",
    ),
    Case("lineage", "corrupt inbox record", lineage("runs", record=b"[]", inbox=True), 0, "not taken in"),
    # --- ./pants mlbuild submit/wait/pull-data (refused before any AWS call) ---
    Case("sagemaker", "submit: config not UTF-8", submit(config=b"\xff\n"), 2, "submit.yaml: not UTF-8 text"),
    Case(
        "sagemaker",
        "submit: config s3:// output",
        submit(config=SUBMIT_CONFIG.replace("s3://demo-bucket/models/", "s3://")),
        2,
        "`sagemaker.output_path`: 's3://' names no bucket",
    ),
    Case(
        "sagemaker",
        "submit: image URI without digest",
        submit(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/toy:latest"),
        2,
        "toy:latest",
        says_file=False,
    ),
    Case(
        "sagemaker",
        "submit: digest mismatch",
        submit("--image-digest", "sha256:" + "cd" * 32),
        2,
        "sha256:" + "cd" * 32,
        says_file=False,
    ),
    Case(
        "sagemaker",
        "submit: override repeated",
        submit("depth=3", "depth=4"),
        2,
        "'depth' is given twice",
        says_file=False,
    ),
    Case(
        "sagemaker",
        "submit: --region not a region",
        submit("--region", "mars-1"),
        2,
        "'mars-1' is not an AWS region code",
        says_file=False,
    ),
    Case(
        "sagemaker",
        "submit: AWS_REGION not a region",
        submit(config=SUBMIT_CONFIG.replace("  region: us-east-1\n", ""), env={"AWS_REGION": "not a region!"}),
        2,
        "AWS_REGION: 'not a region!' is not an AWS region code",
        says_file=False,
    ),
    Case(
        "sagemaker",
        "wait: --region not a region",
        sagemaker("wait", "demo-1", "--region", "us_east_1"),
        2,
        "'us_east_1' is not an AWS region code",
        says_file=False,
    ),
    Case(
        "sagemaker",
        "wait: --poll-seconds negative",
        sagemaker("wait", "demo-1", "--poll-seconds", "-1"),
        2,
        "argument --poll-seconds: must be a number of seconds from 0, got -1",
        says_file=False,
    ),
    Case(
        "sagemaker",
        "wait: --timeout-seconds negative",
        sagemaker("wait", "demo-1", "--timeout-seconds", "-5"),
        2,
        "argument --timeout-seconds: must be a number of seconds above 0, got -5",
        says_file=False,
    ),
    Case(
        "sagemaker",
        "wait: --poll-seconds nan",
        sagemaker("wait", "demo-1", "--poll-seconds", "nan"),
        2,
        "argument --poll-seconds: must be a number of seconds from 0, got nan",
        says_file=False,
    ),
    Case(
        "sagemaker",
        "pull-data: config a directory",
        sagemaker("pull-data", "--config", "{tmp}"),
        2,
        "is a directory, not a config file",
    ),
]


@dataclass
class Outcome:
    code: Optional[int]
    out: str
    err: str
    escaped: Optional[str]  # a traceback, when an exception left main()


def _call(main: Main, argv: List[str]) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    escaped = None
    code: Optional[int]
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # NB: argparse's usage errors
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # NB: that is the finding: a traceback for the user
            code, escaped = None, traceback.format_exc()
    return Outcome(code, out.getvalue(), err.getvalue(), escaped)


def _problems(case: Case, w: World, argv: List[str], o: Outcome, run_dirs_before: List[str]) -> List[str]:
    problems = []
    if o.escaped:
        return [f"traceback: {o.escaped.strip().splitlines()[-1]}"]
    if o.code != case.code:
        problems.append(f"exit {o.code}, expected {case.code}")
    if "Traceback" in o.err:
        problems.append("a traceback on stderr")
    lines = [line for line in o.err.splitlines() if case.says in line]
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines say {case.says!r}; stderr: {o.err.strip()[-600:]!r}")
    elif case.code and lines[0] != o.err.rstrip("\n").splitlines()[-1]:
        problems.append(f"the message is not the last line of stderr: {o.err!r}")
    elif case.says_file:
        named = {Path(a).name for a in argv if "/" in a} | {"pipeline.yaml", str(w.tmp)}
        if not any(name in lines[0] for name in named):
            problems.append(f"the message names no file: {lines[0]!r}")
    if case.code:
        if sorted(p.name for p in w.runs.rglob("*") if p.is_dir()) != run_dirs_before:
            problems.append("left a run folder behind")
        if (w.reports / "report.json").exists():
            problems.append("wrote a report for a refused publish")
        if list((w.tmp / "local" / "jobs").glob("*")):
            problems.append("left a job folder behind")
    return problems


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("AWS_", "MLBUILD_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


def test_the_bad_input_table(tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys) -> None:
    assert len(CASES) >= 80 and len({(c.area, c.name) for c in CASES}) == len(CASES)
    failures: List[str] = []
    refused = 0
    for i, case in enumerate(CASES):
        with pytest.MonkeyPatch.context() as mp:
            w = World(tmp_path / f"case-{i}", mp)
            main, argv = case.setup(w)
            before = sorted(p.name for p in w.runs.rglob("*") if p.is_dir())
            outcome = _call(main, argv)
        refused += outcome.code != 0
        failures += [f"{case.area}: {case.name}: {p}" for p in _problems(case, w, argv, outcome, before)]
    passed = len(CASES) - len({f.split(": ")[0] + ": " + f.split(": ")[1] for f in failures})
    by_area = {area: sum(c.area == area for c in CASES) for area in dict.fromkeys(c.area for c in CASES)}
    with capsys.disabled():
        print(
            f"\nbad-input table: {len(CASES)} cases / {refused} refused / {passed} passed  ({', '.join(f'{a} {n}' for a, n in by_area.items())})"
        )
    assert not failures, "\n".join(failures)
