"""The example's resume: a job stopped after round 40 continues to the same trees as one that never stopped."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mlbuild.runtime import checkpoints
from mlbuild.runtime.pipeline import ReadOnlyHyperparameters, StageContext
from pipelines.lightgbm_dist import generate_data, pipeline

HP = {
    "num_boost_round": 80,
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "max_bin": 63,
    "num_threads": 1,
    "base_port": 12400,
    "network_timeout_minutes": 1,
    "checkpoint_every": 20,
    "seed": 7,
}


def _context(tmp_path: Path, checkpoints_dir: Path, **hp: int) -> StageContext:
    rng = np.random.default_rng(3)
    for part in range(2):
        generate_data.write(tmp_path / "data/train" / f"part-{part}.csv", generate_data.make_rows(rng, 400))
    generate_data.write(tmp_path / "data/validation/v.csv", generate_data.make_rows(rng, 400))
    return StageContext(
        ReadOnlyHyperparameters({**HP, **hp}),
        {"train": tmp_path / "data/train", "validation": tmp_path / "data/validation"},
        tmp_path / "model",
        checkpoints_dir,
        tmp_path / "out",
        logging.getLogger("test"),
    )


def _trees(model) -> str:
    """The model text without its parameters' `[num_iterations: N]` line (the rounds of the last call)."""
    return "\n".join(line for line in model.model_to_string().splitlines() if not line.startswith("[num_iterations:"))


def test_a_resumed_job_grows_the_same_trees(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    ctx = _context(tmp_path, tmp_path / "straight")
    straight = pipeline.train(ctx, pipeline.load(ctx))
    assert [c.step for c in checkpoints.all_checkpoints(tmp_path / "straight", host="algo-1")] == [
        60,
        80,
    ]  # pruned to 2

    store = tmp_path / "interrupted"
    stopped_ctx = _context(tmp_path, store, num_boost_round=40)  # stands for a run killed after round 40
    pipeline.train(stopped_ctx, pipeline.load(stopped_ctx))
    caplog.clear()
    ctx = _context(tmp_path, store)
    resumed = pipeline.train(ctx, pipeline.load(ctx))
    assert "training rounds 41 to 80 (resumed from round 40)" in caplog.text  # 40 rounds, not 80
    assert resumed.current_iteration() == 80
    assert _trees(resumed) == _trees(straight)
    assert np.array_equal(resumed.predict(pipeline.load(ctx).x_valid), straight.predict(pipeline.load(ctx).x_valid))


def test_resume_waits_for_the_round_every_host_saved(tmp_path: Path) -> None:
    ctx = _context(tmp_path, tmp_path / "c")
    ctx = StageContext(**{**ctx.__dict__, "hosts": ("algo-1", "algo-2"), "current_host": "algo-2"})
    assert pipeline.resume_point(ctx) == (0, None)
    model = pipeline.train(_context(tmp_path, tmp_path / "one", num_boost_round=40), pipeline.load(ctx))
    for host, steps in (("algo-1", (20, 40)), ("algo-2", (20,))):  # algo-2 was killed before saving round 40
        for step in steps:
            checkpoints.save(tmp_path / "c", step, model.model_to_string().encode(), ".txt", host=host)
    step, booster = pipeline.resume_point(ctx)
    assert step == 20 and booster is not None
