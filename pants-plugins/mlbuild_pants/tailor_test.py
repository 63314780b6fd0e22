"""`pants tailor`: an ml_pipeline for each pipeline config that no ml_pipeline owns."""

from __future__ import annotations

from pants.core.goals.tailor import PutativeTarget, PutativeTargets
from pants.testutil.rule_runner import RuleRunner

from mlbuild_pants.tailor import PutativeMLPipelineTargetsRequest


def putative(rule_runner: RuleRunner, *dirs: str) -> PutativeTargets:
    return rule_runner.request(PutativeTargets, [PutativeMLPipelineTargetsRequest(dirs)])


def test_tailor_adds_a_target_for_an_unowned_pipeline_config(rule_runner: RuleRunner) -> None:
    rule_runner.write_files({"src/pipez/new/pipeline.yaml": "{}", "src/pipez/other/pipeline.yml": "{}"})
    # NB: a `files` target that globs the configs (as the repo's e2e input does) must not hide them.
    rule_runner.write_files({"src/BUILD": 'files(name="everything", sources=["**/*.yaml", "**/*.yml"])'})
    found = putative(rule_runner, "src/pipez/new", "src/pipez/other", "src/pipez/toy")
    assert found == PutativeTargets(
        [
            PutativeTarget("src/pipez/new", "train", "ml_pipeline", ["pipeline.yaml"], ()),
            PutativeTarget(
                "src/pipez/other", "train", "ml_pipeline", ["pipeline.yml"], (), kwargs={"config": "pipeline.yml"}
            ),
        ]
    )
    # What tailor writes: no `sources=` kwarg (ml_pipeline has none), whatever else globs the config.
    stanza = list(found)[0].generate_build_file_stanza("    ")
    assert stanza.startswith("ml_pipeline(") and "sources" not in stanza


def test_a_config_an_ml_pipeline_names_gets_no_second_target(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            # The default `config`, and one named by the field: both owned.
            "src/pipez/a/pipeline.yaml": "{}",
            "src/pipez/a/BUILD": 'ml_pipeline(name="fit")',
            "src/pipez/b/pipeline.yml": "{}",
            "src/pipez/b/BUILD": 'ml_pipeline(name="fit", config="pipeline.yml")',
            # An ml_pipeline with another config does not own this folder's pipeline.yaml.
            "src/pipez/c/pipeline.yaml": "{}",
            "src/pipez/c/other.yaml": "{}",
            "src/pipez/c/BUILD": 'ml_pipeline(name="fit", config="other.yaml")',
        }
    )
    assert putative(rule_runner, "src/pipez/a", "src/pipez/b", "src/pipez/c") == PutativeTargets(
        [PutativeTarget("src/pipez/c", "train", "ml_pipeline", ["pipeline.yaml"], ())]
    )
