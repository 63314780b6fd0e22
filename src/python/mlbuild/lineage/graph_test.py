from __future__ import annotations

import json

import pytest

from mlbuild.lineage import graph, inspect
from mlbuild.lineage.testing import chain, d, h


def _queries(c):
    pkg, run, pub = c.package, c.run, c.publish
    return {
        "package id": (pkg.id, "package"),
        "run id": (run.id, "run"),
        "publish id": (pub.id, "publish"),
        "id prefix": (run.id[:8], "run"),
        "pex sha256": (pkg.get("pex.sha256"), "package"),
        "pex sha256:": ("sha256:" + pkg.get("pex.sha256"), "package"),
        "pex prefix": (pkg.get("pex.sha256")[:6], "package"),
        "manifest": (pkg.get("image.manifest_digest"), "package"),
        "manifest bare": (pkg.get("image.manifest_digest")[7:], "package"),
        "manifest prefix": (pkg.get("image.manifest_digest")[:15], "package"),
        "image config": (pkg.get("image.config_digest"), "package"),
        "layer": (pkg.get("image.layers")[1], "package"),
        "diff id": (pkg.get("image.diff_ids")[1], "package"),
        "base": (pkg.get("image.base_digest"), "package"),
        "lockfile": (pkg.get("lockfile.sha256"), "package"),
        "config": (pkg.get("config.sha256"), "package"),
        "source revision": (pkg.get("source.revision"), "package"),
        "data checksum": (d("train-data"), "run"),
        "run model": (run.get("model.sha256"), "run"),
        "publish model": (h("published-model"), "publish"),
        "job name": (pub.get("job.name"), "publish"),
        "job arn": (pub.get("job.arn"), "publish"),
        "local run name": (run.get("job.name"), "run"),
        "image ref": (pub.get("image.ref"), "package"),
        "image ref, other repo": ("elsewhere/churn@" + pkg.get("image.manifest_digest"), "package"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "package id",
        "run id",
        "publish id",
        "id prefix",
        "pex sha256",
        "pex sha256:",
        "pex prefix",
        "manifest",
        "manifest bare",
        "manifest prefix",
        "image config",
        "layer",
        "diff id",
        "base",
        "lockfile",
        "config",
        "source revision",
        "data checksum",
        "run model",
        "publish model",
        "job name",
        "job arn",
        "local run name",
        "image ref",
        "image ref, other repo",
    ],
)
def test_every_handle_gives_the_same_lineage(tmp_path, name) -> None:
    c = chain(tmp_path)
    query, focus_kind = _queries(c)[name]
    found = graph.lineage(c.store, query)
    assert set(found.records()) == c.ids
    assert [r.kind for r in found.focus] == [focus_kind]
    assert set(inspect.lineage_json(found)["records"]) == c.ids


def test_upstream_of_publish(tmp_path) -> None:
    c = chain(tmp_path)
    tree = graph.upstream_tree(c.store, c.publish)
    assert [(n.record.kind, n.via) for n in tree.children] == [("package", "image.manifest_digest"), ("run", "parents")]
    (run_node,) = [n for n in tree.children if n.record.kind == "run"]
    # the run reaches the package by its PEX sha256 alone; the package was shown already
    assert [(n.record.kind, n.via, n.repeated) for n in run_node.children] == [("package", "pex.sha256", True)]


def test_downstream_of_package(tmp_path) -> None:
    c = chain(tmp_path)
    tree = graph.downstream_tree(c.store, c.package)
    assert [(n.record.kind, n.via) for n in tree.children] == [
        ("run", "pex.sha256"),
        ("publish", "image.manifest_digest"),
    ]
    assert graph.downstream_of(c.store, c.run) == [(c.publish, "parents")]
    assert graph.downstream_of(c.store, c.publish) == []
    assert graph.upstream_of(c.store, c.package) == []


def test_edges(tmp_path) -> None:
    c = chain(tmp_path)
    edges = set(graph.lineage(c.store, c.run.id).edges())
    assert edges == {(c.package.id, c.run.id, "pex.sha256"), (c.run.id, c.publish.id, "parents")}
    edges = set(graph.lineage(c.store, c.package.id).edges())
    assert (c.package.id, c.publish.id, "image.manifest_digest") in edges


def test_text_rendering(tmp_path) -> None:
    c = chain(tmp_path)
    text = inspect.format_lineage(graph.lineage(c.store, c.run.id[:8]))
    assert text.startswith(f"lineage of {c.run.id} (id, parents)")
    assert f"* run {c.run.id[:12]}" in text
    assert f"package {c.package.id[:12]}" in text and "<- pex.sha256" in text
    assert f"publish {c.publish.id[:12]}" in text and "<- parents" in text
    assert "base image  sha256:" in text and "lockfile" in text and "data        train:" in text
    json.dumps(inspect.lineage_json(graph.lineage(c.store, c.run.id)))
