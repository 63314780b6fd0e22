from __future__ import annotations

import json
from pathlib import Path

from mlbuild.runtime import contract, toolkit_env
from mlbuild.runtime.contract import TrainingEnvironment


def _tree(base: Path) -> TrainingEnvironment:
    config = base / "input/config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text(
        json.dumps(contract.resource_config("algo-1", ["algo-2", "algo-1"], "ml.g5.xlarge"))
    )
    (config / "inputdataconfig.json").write_text(json.dumps({"train": {"TrainingInputMode": "File"}, "validation": {}}))
    (config / "checkpointconfig.json").write_text(json.dumps(contract.checkpoint_config("s3://b/c/")))
    return TrainingEnvironment.load(base)


def test_names_and_value_formats_are_the_toolkits() -> None:
    base = Path("/opt/ml")
    env = _tree_at(base)
    variables = toolkit_env.toolkit_environment(env, {"lr": 0.1, "name": "x", "deep": True}, num_cpus=8, num_gpus=1)
    assert variables["SM_HOSTS"] == '["algo-1","algo-2"]'  # sorted, compact JSON
    assert variables["SM_CURRENT_HOST"] == "algo-1"
    assert variables["SM_NUM_CPUS"] == "8" and variables["SM_NUM_GPUS"] == "1"
    assert variables["SM_MODEL_DIR"] == "/opt/ml/model"
    assert variables["SM_INPUT_CONFIG_DIR"] == "/opt/ml/input/config"
    assert variables["SM_OUTPUT_DATA_DIR"] == "/opt/ml/output/data"
    assert variables["SM_CHANNELS"] == '["train","validation"]'
    assert variables["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert variables["SM_CHANNEL_VALIDATION"] == "/opt/ml/input/data/validation"
    assert json.loads(variables["SM_HPS"]) == {"lr": 0.1, "name": "x", "deep": True}
    assert variables["SM_HP_LR"] == "0.1" and variables["SM_HP_NAME"] == "x" and variables["SM_HP_DEEP"] == "true"
    assert variables["SM_CURRENT_INSTANCE_TYPE"] == "ml.g5.xlarge"
    assert variables["SM_NETWORK_INTERFACE_NAME"] == "eth0"
    assert variables["SM_IS_HETERO"] == "false"
    assert json.loads(variables["SM_CHECKPOINT_CONFIG"])["S3Uri"] == "s3://b/c/"
    assert all(isinstance(v, str) for v in variables.values())


def _tree_at(base: Path) -> TrainingEnvironment:
    # NB: the values are paths under the base, so build the tree elsewhere and re-base it.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        env = _tree(Path(tmp))
    return TrainingEnvironment(
        base, env.hyperparameters, env.input_data_config, env.resource_config, env.checkpoint_config
    )


def test_export_sets_them() -> None:
    environ = {"SM_HOSTS": "stale", "PATH": "/bin"}
    toolkit_env.export({"SM_HOSTS": '["algo-1"]'}, environ)
    assert environ == {"SM_HOSTS": '["algo-1"]', "PATH": "/bin"}


def test_format_value() -> None:
    assert toolkit_env.format_value(None) == ""
    assert toolkit_env.format_value({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert toolkit_env.format_value("s p") == "s p"
