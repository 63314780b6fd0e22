"""`pants publish` pushes to the registries of pants.toml with interpolated tags, lists every
reference in `--publish-output`, skips a `skip_push` target and refuses an unknown alias."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from e2e.publish_lineage_test import NO_AWS
from e2e.repo import copy_repo, pants
from mlbuild.registry.local_server import LocalRegistry, serve_registry
from mlbuild.tools_required import require_tool

CHURN = "src/python/pipelines/churn:train"
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"

pytestmark = [require_tool("bwrap", "bubblewrap"), require_tool("docker-registry", "docker-registry")]


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[LocalRegistry, LocalRegistry]]:
    with serve_registry(tmp_path_factory.mktemp("ci")) as ci, serve_registry(tmp_path_factory.mktemp("team")) as team:
        yield ci, team


def _get(url: str) -> Tuple[dict, str]:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": ACCEPT}), timeout=30) as response:
        return json.loads(response.read()), response.headers.get("Docker-Content-Digest", "")


def _set_churn_fields(repo: Path, fields: str) -> None:
    (repo / "src/python/pipelines/churn/BUILD").write_text(
        f'python_sources()\n\nml_pipeline(\n    name="train",\n{fields})\n'
    )


def test_publish_pushes_to_two_registries_with_interpolated_tags(registries, tmp_path: Path) -> None:
    ci, team = registries
    repo = copy_repo(tmp_path / "repo")
    with open(repo / "pants.toml", "a") as toml:
        toml.write(
            f'\n[mlbuild.registries.ci]\naddress = "{ci.host}"\ndefault = true\nextra_image_tags = ["latest"]\n'
            f'\n[mlbuild.registries.team]\naddress = "{team.host}"\n'
        )
    _set_churn_fields(
        repo,
        '    registries=["@ci", "@team"],\n    repository="ml/{directory}",\n    image_tags=["{pipeline}-stable"],\n',
    )
    out = tmp_path / "publish.json"
    result = pants(repo, "publish", f"--publish-output={out}", CHURN, env=NO_AWS)
    assert result.exit_code == 0, result.stderr[-4000:]
    entries = json.loads(out.read_text())
    (digest,) = {e["image_digest"] for e in entries}  # publish builds the package but writes no dist/
    content_tag = "sha256-" + digest.split(":")[1][:16]

    # NB: docker-registry 2.8 has no referrers API: the provenance goes under the fallback tag.
    referrers_tag = "sha256-" + digest.split(":")[1]
    for registry, extra in ((ci, ["latest"]), (team, [])):
        tags, _ = _get(f"http://{registry.host}/v2/ml/churn/tags/list")
        assert sorted(tags["tags"]) == sorted([content_tag, "churn-train-stable", *extra, referrers_tag])
        for tag in set(tags["tags"]) - {referrers_tag}:
            assert _get(f"http://{registry.host}/v2/ml/churn/manifests/{tag}")[1] == digest
        index, _ = _get(f"http://{registry.host}/v2/ml/churn/manifests/{referrers_tag}")
        assert [m["artifactType"] for m in index["manifests"]] == ["application/vnd.in-toto+json"]

    pushed = {e["registry"]: e for e in entries if "registry" in e}
    assert set(pushed) == {ci.host, team.host}
    assert pushed[ci.host]["names"] == [
        f"{ci.host}/ml/churn@{digest}",
        f"{ci.host}/ml/churn:{content_tag}",
        f"{ci.host}/ml/churn:churn-train-stable",
        f"{ci.host}/ml/churn:latest",
    ]
    assert all(e["published"] and e["target"] == CHURN for e in entries)
    (job,) = [e for e in entries if "report_json" in e]
    assert digest in (repo / job["report_json"]).read_text()  # the job trained the image that was pushed

    # An alias that pants.toml does not define: a clear error, nothing pushed.
    _set_churn_fields(repo, '    registries=["@nope"],\n')
    bad = pants(repo, "publish", CHURN, env=NO_AWS)
    assert bad.exit_code != 0
    assert "names @nope, which is not in [mlbuild].registries (known: @ci, @team)" in bad.stderr

    # skip_push: reported as skipped, nothing pushed, no job.
    (repo / job["report_json"]).unlink()
    _set_churn_fields(repo, '    registries=["@team"],\n    repository="skipped",\n    skip_push=True,\n')
    skipped = pants(repo, "publish", f"--publish-output={out}", CHURN, env=NO_AWS)
    assert skipped.exit_code == 0, skipped.stderr[-4000:]
    (entry,) = json.loads(out.read_text())
    assert entry["published"] is False and entry["status"].startswith("skipped (by `skip_push`")
    assert not (repo / job["report_json"]).exists()
    catalog, _ = _get(f"http://{team.host}/v2/_catalog")
    assert catalog["repositories"] == ["ml/churn"]
