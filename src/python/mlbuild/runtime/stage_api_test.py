"""The stage API the README promises: read-only ctx.hp, default featurize/save, seeding, metric names."""

from __future__ import annotations

import copy
import json
import pickle
import random

import numpy
import pytest

from mlbuild.runtime import metrics, train
from mlbuild.runtime.errors import PipelineError
from mlbuild.runtime.pipeline import ReadOnlyHyperparameters


def test_ctx_hp_refuses_changes_but_reads_copies_and_serialises_like_a_dict() -> None:
    hp = ReadOnlyHyperparameters({"max_depth": 3, "seed": 42})
    for change in (
        lambda: hp.__setitem__("max_depth", 5),
        lambda: hp.update(max_depth=5),
        lambda: hp.pop("seed"),
        lambda: hp.setdefault("new", 1),
        lambda: hp.clear(),
    ):
        with pytest.raises(TypeError, match="read-only.*Fix: copy it"):
            change()
    assert hp == {"max_depth": 3, "seed": 42}
    assert json.loads(json.dumps(hp)) == {"max_depth": 3, "seed": 42}
    assert dict(hp) == {**hp}
    for duplicate in (copy.copy(hp), copy.deepcopy(hp), pickle.loads(pickle.dumps(hp))):
        duplicate["max_depth"] = 9  # copies are plain dicts
        assert type(duplicate) is dict and hp["max_depth"] == 3


def test_seeding_makes_python_and_numpy_draws_repeat() -> None:

    draws = []
    for seed in (7, 7, 8):
        train._seed_everything({"seed": seed})
        draws.append((random.random(), float(numpy.random.random())))
    assert draws[0] == draws[1] != draws[2]


@pytest.mark.parametrize("name", ["validation:auc", "train/loss", "a.b-c_d"])
def test_metric_names_with_the_documented_characters_pass(name: str) -> None:
    assert metrics.validate({name: 1}, "test") == {name: 1.0}


@pytest.mark.parametrize("name", ["has space", "auc!", "", "é"])
def test_other_metric_names_are_refused_with_the_fix(name: str) -> None:
    with pytest.raises(PipelineError, match="letters, digits and _.:/-"):
        metrics.validate({name: 1}, "test")
