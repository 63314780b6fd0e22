from mlbuild.sagemaker.env import FORWARDED_ENV_VARS as OWNER_FORWARDED_ENV_VARS
from mlbuild_pants.names import FORWARDED_ENV_VARS


def test_the_plugins_copy_of_the_forwarded_env_vars_matches_the_owner() -> None:
    assert FORWARDED_ENV_VARS == OWNER_FORWARDED_ENV_VARS


def test_the_pipeline_placeholder_is_the_job_names_pipeline_name() -> None:
    from mlbuild.sagemaker.job_name import pipeline_name_from_address
    from mlbuild_pants.registries import placeholder_values

    for spec_path, name in (("src/python/pipelines/churn", "train"), ("p/iris", "iris"), ("x", "y-z")):
        assert placeholder_values(spec_path, name, "unknown", "sha256:00")["pipeline"] == pipeline_name_from_address(
            f"{spec_path}:{name}"
        )


def test_every_mirrored_name_matches_mlbuild_names() -> None:
    from mlbuild import names as owner
    from mlbuild_pants import names

    assert {n: getattr(names, n) for n in names.MIRRORED} == {n: getattr(owner, n) for n in names.MIRRORED}
