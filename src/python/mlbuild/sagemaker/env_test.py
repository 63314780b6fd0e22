from __future__ import annotations

import subprocess
import sys

from mlbuild.sagemaker.env import FORWARDED_ENV_VARS, forwarded_env


def test_forwarded_env() -> None:
    environ = {
        "AWS_PROFILE": "ml",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://x",
        "AWS_ENDPOINT_URL": "http://y",
        "PATH": "/bin",
        "AWS_SOMETHING_ELSE": "no",
    }
    assert forwarded_env(environ) == {
        "AWS_ENDPOINT_URL": "http://y",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://x",
        "AWS_PROFILE": "ml",
    }
    for name in (
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
    ):
        assert name in FORWARDED_ENV_VARS


def test_env_imports_without_boto3() -> None:
    # NB: the Pants plugin imports this module in its own resolve, where boto3 is absent.
    code = "import sys, mlbuild.sagemaker.env; assert 'boto3' not in sys.modules and 'botocore' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": ":".join(sys.path)})
