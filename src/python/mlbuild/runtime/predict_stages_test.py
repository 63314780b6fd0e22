"""The serving stages' defaults: load_model reads what save wrote, predict takes a batch of records."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy
import pytest

from mlbuild.runtime.pipeline import (
    OPTIONAL_STAGES,
    REQUIRED_STAGES,
    ModelFileError,
    RecordError,
    StageContext,
    default_load_model,
    default_predict,
    default_save,
)


class SumModel:
    """A model with scikit-learn's shape: n_features_in_ and predict(2-D array)."""

    n_features_in_ = 3

    def predict(self, x: numpy.ndarray) -> numpy.ndarray:
        assert x.dtype == numpy.float64 and x.ndim == 2
        return x.sum(axis=1)


class NamedSumModel(SumModel):
    feature_names_in_ = numpy.array(["a", "b", "c"], dtype=object)


def _ctx(model_dir: Path) -> StageContext:
    return StageContext({}, {}, model_dir, model_dir / "ckpt", model_dir / "out", logging.getLogger("test"))


def test_serving_stages_are_optional_and_the_required_ones_unchanged() -> None:
    assert REQUIRED_STAGES == ("load", "train", "evaluate")
    assert {"load_model", "predict"} <= set(OPTIONAL_STAGES)


def test_default_load_model_reads_what_default_save_wrote(tmp_path: Path) -> None:
    default_save(_ctx(tmp_path), {"weights": [1, 2, 3]})
    assert default_load_model(_ctx(tmp_path), tmp_path) == {"weights": [1, 2, 3]}


def test_a_model_folder_without_model_pkl_names_the_file_what_is_there_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(
        ModelFileError, match=r"model\.pkl: no model to load \(it has metrics\.json\).*Fix: .*load_model"
    ):
        default_load_model(_ctx(tmp_path), tmp_path)
    with pytest.raises(ModelFileError, match="does not exist"):
        default_load_model(_ctx(tmp_path), tmp_path / "missing")
    assert ModelFileError.exit_code == 2


def test_default_predict_takes_csv_strings_and_numbers_alike(tmp_path: Path) -> None:
    out = default_predict(_ctx(tmp_path), SumModel(), [["1", "2", "3.5"], [4, 5, 6]])
    assert out.tolist() == [6.5, 15.0]


def test_default_predict_orders_json_objects_by_the_models_column_names(tmp_path: Path) -> None:
    out = default_predict(_ctx(tmp_path), NamedSumModel(), [{"c": 100, "a": 1, "b": 10}])
    assert out.tolist() == [111.0]
    with pytest.raises(RecordError, match="record 1 lacks c"):
        default_predict(_ctx(tmp_path), NamedSumModel(), [{"a": 1, "b": 2}])
    with pytest.raises(RecordError, match="does not know its column names.*Fix"):
        default_predict(_ctx(tmp_path), SumModel(), [{"a": 1, "b": 2, "c": 3}])


@pytest.mark.parametrize(
    "records, message",
    [
        ([["1", "2"]], "must have 3 columns .*got 2"),
        ([["1", "2", "3", "4"]], "must have 3 columns .*got 4"),
        ([["1", "x", "3"]], "must be numbers.*Fix"),
        ([["1", "2", "3"], ["1", "2"]], "must be numbers|2-D"),
        (["1", "2", "3"], "2-D"),
    ],
)
def test_records_the_model_cannot_take_are_record_errors(tmp_path: Path, records: list, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        default_predict(_ctx(tmp_path), SumModel(), records)


def test_default_predict_works_on_a_real_scikit_learn_model(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(numpy.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), numpy.array([1.0, 2.0, 3.0]))
    model = pickle.loads(pickle.dumps(model))
    out = default_predict(_ctx(tmp_path), model, [["1", "1"], ["0", "0"]])
    assert numpy.allclose(out, [3.0, 0.0])
