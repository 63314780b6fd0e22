"""A pipeline's stages see the toolkit's `SM_*` variables while they train.

The container's own `train` command (`python -m mlbuild.runtime.cli`, in a subprocess, as the
image runs it) on a SageMaker tree for host algo-2 of two: the pipeline's `train` stage copies
every `SM_*` variable it sees into the model folder, and the test checks their values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlbuild.runtime import contract

PIPELINE = """
import json, os

def load(ctx):
    return None

def train(ctx, _):
    seen = {k: v for k, v in os.environ.items() if k.startswith("SM_")}
    (ctx.model_dir / "sm.json").write_text(json.dumps(seen, sort_keys=True))
    return seen

def evaluate(ctx, model, _):
    return {"sm_variables": len(model)}

def save(ctx, model):
    pass
"""
CONFIG = """\
hyperparameters:
  lr: 0.1
  name: x
channels:
  train: {}
"""


def test_the_stages_see_the_sm_variables_of_their_host(tmp_path: Path) -> None:
    package = tmp_path / "src/smpipe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pipeline.py").write_text(PIPELINE)
    (package / "pipeline.yaml").write_text(CONFIG)
    base = tmp_path / "opt/ml"
    (base / contract.INPUT_CONFIG_DIR).mkdir(parents=True)
    (base / contract.DATA_DIR / "train").mkdir(parents=True)
    (base / contract.HYPERPARAMETERS_FILE).write_text(json.dumps({"lr": "0.25", "name": "y"}))
    (base / contract.INPUT_DATA_CONFIG_FILE).write_text(json.dumps({"train": {"TrainingInputMode": "File"}}))
    resource = contract.resource_config("algo-2", ["algo-1", "algo-2"], "ml.m5.xlarge")
    (base / contract.RESOURCE_CONFIG_FILE).write_text(json.dumps(resource))

    mlbuild_root = Path(__file__).resolve().parents[2]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SM_")},
        # NB: absolute: under Pants some sys.path entries are relative to the sandbox.
        "PYTHONPATH": os.pathsep.join(
            [str(tmp_path / "src"), str(mlbuild_root), *(os.path.abspath(p) for p in sys.path if p)]
        ),
        "MLBUILD_PIPELINE_MODULE": "smpipe.pipeline",
        "MLBUILD_PIPELINE_CONFIG": "pipeline.yaml",
        "MLBUILD_PIPELINE_ADDRESS": "src/smpipe:train",
        contract.BASE_DIR_ENV_VAR: str(base),
    }
    done = subprocess.run(
        [sys.executable, "-m", "mlbuild.runtime.cli"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    seen = json.loads((base / "model/sm.json").read_text())
    assert json.loads(seen["SM_HPS"]) == {"lr": 0.25, "name": "y"}  # decoded by the config's types
    assert (seen["SM_HP_LR"], seen["SM_HP_NAME"]) == ("0.25", "y")
    assert seen["SM_CHANNELS"] == '["train"]'
    assert seen["SM_CHANNEL_TRAIN"] == str(base / "input/data/train")
    assert seen["SM_MODEL_DIR"] == str(base / "model")
    assert seen["SM_OUTPUT_DATA_DIR"] == str(base / "output/data")
    assert seen["SM_HOSTS"] == '["algo-1","algo-2"]' and seen["SM_CURRENT_HOST"] == "algo-2"
    assert seen["SM_CURRENT_INSTANCE_TYPE"] == "ml.m5.xlarge"
    # What this machine has, counted here the way a container sees it: device nodes, CPU affinity.
    gpu_nodes = [p for p in Path("/dev").glob("nvidia*") if p.name[len("nvidia") :].isdigit()]
    assert seen["SM_NUM_GPUS"] == str(len(gpu_nodes))
    assert seen["SM_NUM_CPUS"] == str(len(os.sched_getaffinity(0)))
    assert "SM_CHECKPOINT_CONFIG" not in seen  # no checkpoint config in this tree
