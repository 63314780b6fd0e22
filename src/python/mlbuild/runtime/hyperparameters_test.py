from __future__ import annotations

import json

import pytest

from mlbuild.runtime import hyperparameters
from mlbuild.runtime.config import parse_config
from mlbuild.runtime.errors import HyperparameterError

CONFIG = parse_config(
    """
hyperparameters:
  rate: 0.1
  depth: {type: int, default: 3, min: 1}
  loss: {type: str, default: log_loss, choices: [log_loss, "0.5", "true"]}
  verbose: false
  name: churn
""",
    "p.yaml",
)


@pytest.mark.parametrize(
    "values",
    [
        CONFIG.defaults,
        {"rate": 1e-05, "depth": 12, "loss": "0.5", "verbose": True, "name": 'with "quotes" and spaces'},
        {"rate": 3.0, "depth": 1, "loss": "true", "verbose": False, "name": ""},
    ],
)
def test_encode_then_decode_is_identity(values) -> None:
    encoded = hyperparameters.encode(values)
    assert all(isinstance(v, str) for v in encoded.values())
    assert list(encoded) == sorted(encoded)
    decoded = hyperparameters.decode(CONFIG, encoded, "hp.json")
    assert decoded == values
    assert {k: type(v) for k, v in decoded.items()} == {k: type(v) for k, v in values.items()}
    # And through a JSON file, the way SageMaker hands it over.
    assert hyperparameters.decode(CONFIG, json.loads(json.dumps(encoded)), "hp.json") == values


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({"rate": "0.5"}, {"rate": 0.5}),
        ({"rate": "2"}, {"rate": 2.0}),
        ({"depth": "7"}, {"depth": 7}),
        ({"depth": "7.0"}, {"depth": 7}),
        ({"depth": '"7"'}, {"depth": 7}),
        ({"loss": "log_loss"}, {"loss": "log_loss"}),  # raw, as a console user types it
        ({"loss": '"log_loss"'}, {"loss": "log_loss"}),  # JSON-encoded, as the SDK sends it
        ({"loss": "0.5"}, {"loss": "0.5"}),  # a str that looks like a number stays a str
        ({"verbose": "True"}, {"verbose": True}),
        ({"verbose": "false"}, {"verbose": False}),
        ({"name": '"x y"'}, {"name": "x y"}),
        ({"sagemaker_program": "train.py", "_tuning_objective_metric": "auc"}, {}),
    ],
)
def test_decode_accepts_json_encoded_and_raw_strings(raw, expected) -> None:
    assert hyperparameters.decode(CONFIG, raw, "hp.json") == {**CONFIG.defaults, **expected}


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"dpeth": "3"},
            "unknown hyperparameter 'dpeth' (known: depth, loss, name, rate, verbose). Fix: did you mean 'depth'?",
        ),
        (
            {"depth": "three"},
            "hyperparameter 'depth' must be int, got 'three'. Fix: give an int value (its default is 3).",
        ),
        ({"depth": "true"}, "hyperparameter 'depth' must be int"),
        ({"depth": "0"}, "'depth' is 0, below its min 1.0"),
        ({"rate": "fast"}, "hyperparameter 'rate' must be float"),
        ({"rate": "nan"}, "hyperparameter 'rate' must be float"),
        ({"verbose": "maybe"}, "hyperparameter 'verbose' must be bool"),
        ({"loss": "hinge"}, "'loss' is 'hinge', not one of ['log_loss', '0.5', 'true']"),
    ],
)
def test_bad_values_are_rejected_with_the_fix(raw, message) -> None:
    with pytest.raises(HyperparameterError) as e:
        hyperparameters.decode(CONFIG, raw, "hp.json")
    assert message in str(e.value)
    assert str(e.value).startswith("hp.json: ")


def test_command_line_assignments() -> None:
    assert hyperparameters.parse_assignments(["depth=4", "--rate=0.2", "name=a=b", "max-depth=1"]) == {
        "depth": "4",
        "rate": "0.2",
        "name": "a=b",
        "max_depth": "1",
    }
    with pytest.raises(HyperparameterError, match="'depth' is not a hyperparameter override. Fix: write name=value"):
        hyperparameters.parse_assignments(["depth"])


def test_a_hyperparameter_given_twice_is_refused_not_last_wins() -> None:
    """Issue 11 item 8: `max_depth=3 max_depth=5` trained with 5, silently."""
    with pytest.raises(
        HyperparameterError, match=r"'max_depth' is given twice \(max_depth=3 and max-depth=5\). Fix: give it once."
    ):
        hyperparameters.parse_assignments(["max_depth=3", "max-depth=5"])
    assert hyperparameters.parse_assignments(["depth=3", "depth=3"]) == {"depth": "3"}  # NB: a harmless repeat


def test_a_bare_name_is_answered_with_the_pipelines_own_example() -> None:
    config = parse_config("hyperparameters:\n  C: 1.0\n  penalty: l2\n", "src/python/pipelines/cancer/pipeline.yaml")
    with pytest.raises(HyperparameterError) as e:
        hyperparameters.parse_assignments(["C"], config)
    assert "e.g. C=1.0." in str(e.value) and "max_depth" not in str(e.value)
    with pytest.raises(HyperparameterError, match="e.g. penalty=l2"):
        hyperparameters.parse_assignments(["penalty"], config)
    with pytest.raises(HyperparameterError, match="e.g. C=1.0"):  # not a name it has: its first one
        hyperparameters.parse_assignments(["gamma"], config)
    with pytest.raises(HyperparameterError, match="e.g. rate=0.1"):
        hyperparameters.parse_assignments(["x"], CONFIG)
    with pytest.raises(HyperparameterError) as e:  # no config at hand: no borrowed names
        hyperparameters.parse_assignments(["C"])
    assert "max_depth" not in str(e.value)
