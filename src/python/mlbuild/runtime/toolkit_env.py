"""The sagemaker-training-toolkit's `SM_*` environment, so scripts written for toolkit containers port unchanged.

AWS framework containers (and anything built on `sagemaker-training`) give the training script
its settings as environment variables; mlbuild's `train` sets the same names, with values
formatted the way the toolkit formats them: strings as they are, everything else JSON with
sorted keys and no spaces (`["algo-1","algo-2"]`, `4`, `{"lr":0.1}`).
https://github.com/aws/sagemaker-training-toolkit/blob/master/ENVIRONMENT_VARIABLES.md

Set (paths under the run's base: `/opt/ml` in a container, the run directory locally):

    SM_HOSTS SM_CURRENT_HOST SM_CURRENT_INSTANCE_TYPE SM_CURRENT_INSTANCE_GROUP
    SM_INSTANCE_GROUPS SM_INSTANCE_GROUPS_DICT SM_IS_HETERO SM_NETWORK_INTERFACE_NAME
    SM_NUM_CPUS SM_NUM_GPUS SM_NUM_NEURONS
    SM_MODEL_DIR SM_INPUT_DIR SM_INPUT_CONFIG_DIR SM_OUTPUT_DIR SM_OUTPUT_DATA_DIR
    SM_CHANNELS SM_CHANNEL_<NAME> SM_INPUT_DATA_CONFIG SM_RESOURCE_CONFIG
    SM_HPS SM_HP_<NAME> SM_LOG_LEVEL SM_CHECKPOINT_CONFIG (only with a checkpoint config)

Not set: the toolkit's script-mode ones (SM_MODULE_NAME, SM_MODULE_DIR, SM_USER_ENTRY_POINT,
SM_USER_ARGS, SM_FRAMEWORK_MODULE, SM_FRAMEWORK_PARAMS, SM_TRAINING_ENV): mlbuild's `train` is
the entry point itself, there is no user module to download and run.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Mapping, MutableMapping

from mlbuild.runtime import contract
from mlbuild.runtime.contract import TrainingEnvironment

PREFIX = "SM_"


def format_value(value: Any) -> str:
    """The toolkit's rule (`mapping.to_env_vars`): a string as is, None as '', anything else compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def toolkit_environment(
    env: TrainingEnvironment, hyperparameters: Mapping[str, Any], num_cpus: int, num_gpus: int
) -> Dict[str, str]:
    """Every `SM_*` variable for this host, from the SageMaker tree and the decoded hyperparameters."""
    base = env.base_dir
    groups = env.instance_groups
    channels = sorted(env.input_data_config)
    values: Dict[str, Any] = {
        "hosts": env.hosts,
        "current_host": env.current_host,
        "current_instance_type": env.current_instance_type,
        "current_instance_group": env.current_group_name,
        "instance_groups": [g.get("instance_group_name") for g in groups],
        "instance_groups_dict": {str(g.get("instance_group_name")): g for g in groups},
        "is_hetero": len(groups) > 1,
        "network_interface_name": env.network_interface,
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "num_neurons": 0,
        "model_dir": str(base / contract.MODEL_DIR),
        "input_dir": str(base / contract.INPUT_DIR),
        "input_config_dir": str(base / contract.INPUT_CONFIG_DIR),
        "output_dir": str(base / contract.OUTPUT_DIR),
        "output_data_dir": str(base / contract.OUTPUT_DATA_DIR),
        "channels": channels,
        "input_data_config": env.input_data_config,
        "resource_config": env.resource_config,
        "hps": dict(hyperparameters),
        "log_level": logging.getLogger().getEffectiveLevel(),
    }
    for name in channels:
        values[f"channel_{name}"] = str(env.channel_dir(name))
    for name, value in hyperparameters.items():
        values[f"hp_{name}"] = value
    if env.checkpoint_config:
        values["checkpoint_config"] = env.checkpoint_config
    return {PREFIX + key.upper(): format_value(value) for key, value in values.items()}


def export(variables: Mapping[str, str], environ: MutableMapping[str, str]) -> None:
    """Set the variables; mlbuild's values win over any inherited ones of the same name."""
    environ.update(variables)
