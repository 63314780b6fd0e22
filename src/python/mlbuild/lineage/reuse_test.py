from __future__ import annotations

import pytest

from mlbuild.lineage.reuse import find_reusable_run, is_reusable, run_inputs
from mlbuild.lineage.store import Store
from mlbuild.lineage.testing import chain, d, package, run

HP = {"lr": 0.1, "epochs": 3}
DATA = {"train": d("train-data")}


def test_hit_by_pex_or_image(tmp_path) -> None:
    c = chain(tmp_path)
    assert find_reusable_run(c.store, c.package.get("pex.sha256"), HP, DATA) == c.run
    assert find_reusable_run(c.store, c.package.get("image.manifest_digest"), HP, DATA) == c.publish
    # encoded hyperparameters and a bare-hex checksum are the same thing
    assert (
        find_reusable_run(
            c.store,
            "sha256:" + c.package.get("pex.sha256"),
            {"lr": "0.1", "epochs": "3"},
            {"train": d("train-data")[7:]},
        )
        == c.run
    )


@pytest.mark.parametrize(
    "artifact, hp, data",
    [
        ("other pex", HP, DATA),
        ("pex", {"lr": 0.2, "epochs": 3}, DATA),
        ("pex", {"lr": 0.1}, DATA),
        ("pex", HP, {"train": d("changed")}),
        ("pex", HP, {}),
        ("pex", HP, {**DATA, "test": d("test")}),
        ("base", HP, DATA),  # a base image is not a run's artifact
    ],
)
def test_miss(tmp_path, artifact, hp, data) -> None:
    c = chain(tmp_path)
    key = {
        "pex": c.package.get("pex.sha256"),
        "other pex": package(seed="x").get("pex.sha256"),
        "base": c.package.get("image.base_digest"),
    }[artifact]
    assert find_reusable_run(c.store, key, hp, data) is None


def test_failed_runs_are_not_reused_and_the_latest_hit_wins(tmp_path) -> None:
    store = Store(tmp_path)
    pkg = package()
    failed = run(pkg, "2024-05-05T00:00:00Z", status="Failed")
    old, new = run(pkg, "2024-05-01T00:00:00Z"), run(pkg, "2024-05-03T00:00:00Z")
    for r in (pkg, failed, old, new):
        store.put(r)
    assert find_reusable_run(store, pkg.get("pex.sha256"), HP, DATA) == new


def test_one_normal_form_and_one_decision() -> None:
    want = run_inputs("a" * 64, HP, DATA)
    assert want == run_inputs("sha256:" + "A" * 64, {"epochs": "3", "lr": "0.1"}, {"train": d("train-data")[7:]})
    assert want["artifact"] == "sha256:" + "a" * 64 and want["hyperparameters"] == {"lr": "0.1", "epochs": "3"}
    assert is_reusable("Completed", want, want)
    assert not is_reusable("Failed", want, want) and not is_reusable("InProgress", want, want)
    assert not is_reusable("Completed", None, want)  # NB: inputs unknown
    assert not is_reusable(
        "Completed", run_inputs("a" * 64, HP, {"train": None}), want
    )  # NB: a channel without a checksum
    assert not is_reusable("Completed", run_inputs("a" * 64, {**HP, "lr": 0.2}, DATA), want)
