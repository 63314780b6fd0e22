from mlbuild.sagemaker.env import FORWARDED_ENV_VARS as OWNER_FORWARDED_ENV_VARS

from mlbuild_pants.names import FORWARDED_ENV_VARS


def test_the_plugins_copy_of_the_forwarded_env_vars_matches_the_owner() -> None:
    assert FORWARDED_ENV_VARS == OWNER_FORWARDED_ENV_VARS
