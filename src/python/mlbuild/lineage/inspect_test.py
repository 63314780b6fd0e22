from mlbuild.lineage.inspect import headline
from mlbuild.lineage.record import make_record


def test_a_replay_record_says_when_and_how_it_came_out() -> None:
    replay = make_record(
        "run",
        "src/p:train",
        "2026-11-30T03:37:10Z",
        job={"name": "r1", "status": "Completed"},
        extra={"replay": {"of": "churn-train-1", "verdict": "identical"}},
    )
    assert headline(replay).endswith("Completed  replayed on 2026-11-30: identical")
    assert "replayed" not in headline(make_record("run", "src/p:train", "2026-11-30T03:37:10Z"))
