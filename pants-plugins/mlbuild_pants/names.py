"""Names the plugin shares with mlbuild's plain modules, which it may not import.

NB: the plugin lives in its own source root so that pantsd restarts only when the plugin
changes; importing `mlbuild.*` would put the whole library on Pants' path again. Each name
here is checked against its owner in `names_test.py`.
"""

from typing import Tuple

# = mlbuild.sagemaker.env.FORWARDED_ENV_VARS: what a SageMaker call needs from the caller's env.
FORWARDED_ENV_VARS: Tuple[str, ...] = (
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_STS",
    "HOME",
)

# = mlbuild.names: the names the plugin spells, mirrored (it may not import the library);
# names_test.py checks every one against its owner.
PIPELINE_MODULE_ENV = "MLBUILD_PIPELINE_MODULE"
PIPELINE_CONFIG_ENV = "MLBUILD_PIPELINE_CONFIG"
PIPELINE_ADDRESS_ENV = "MLBUILD_PIPELINE_ADDRESS"
LINEAGE_DIR_ENV = "MLBUILD_LINEAGE_DIR"
LINEAGE_INBOX_ENV = "MLBUILD_LINEAGE_INBOX"
SOURCE_REVISION_ENV = "MLBUILD_SOURCE_REVISION"
ECR_REGISTRY_ENV = "MLBUILD_ECR_REGISTRY"
INSECURE_REGISTRIES_ENV = "MLBUILD_INSECURE_REGISTRIES"
UNPACK_MAX_BYTES_ENV = "MLBUILD_UNPACK_MAX_BYTES"
UNPACK_MAX_ENTRIES_ENV = "MLBUILD_UNPACK_MAX_ENTRIES"
UNPACK_MAX_FILE_BYTES_ENV = "MLBUILD_UNPACK_MAX_FILE_BYTES"
UNPACK_KEEP_SPECIAL_MODES_ENV = "MLBUILD_UNPACK_KEEP_SPECIAL_MODES"
LABEL_PREFIX = "org.mlbuild"
PIPELINE_ADDRESS_LABEL = f"{LABEL_PREFIX}.pipeline.address"
PEX_SHA256_LABEL = f"{LABEL_PREFIX}.pex.sha256"
LOCKFILE_PATH_LABEL = f"{LABEL_PREFIX}.lockfile.path"
LOCKFILE_SHA256_LABEL = f"{LABEL_PREFIX}.lockfile.sha256"
OCI_REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
OCI_TITLE_LABEL = "org.opencontainers.image.title"
OCI_REVISION_LABEL = "org.opencontainers.image.revision"
OCI_BASE_NAME_LABEL = "org.opencontainers.image.base.name"
OCI_BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
APP_LAYER = "app"
DIST_LINEAGE_SUBDIR = "mlbuild/lineage"
DIST_RUNS_SUBDIR = "mlbuild/runs"
DIST_PUBLISH_SUBDIR = "mlbuild/publish"
DIST_SHARED_BLOBS_SUBDIR = "mlbuild/blobs"
LINEAGE_STORE_DIR = ".mlbuild/lineage"
LOCAL_PUBLISH_DIR = ".mlbuild/local"

MIRRORED: Tuple[str, ...] = (
    "PIPELINE_MODULE_ENV",
    "PIPELINE_CONFIG_ENV",
    "PIPELINE_ADDRESS_ENV",
    "LINEAGE_DIR_ENV",
    "LINEAGE_INBOX_ENV",
    "SOURCE_REVISION_ENV",
    "ECR_REGISTRY_ENV",
    "INSECURE_REGISTRIES_ENV",
    "UNPACK_MAX_BYTES_ENV",
    "UNPACK_MAX_ENTRIES_ENV",
    "UNPACK_MAX_FILE_BYTES_ENV",
    "UNPACK_KEEP_SPECIAL_MODES_ENV",
    "LABEL_PREFIX",
    "PIPELINE_ADDRESS_LABEL",
    "PEX_SHA256_LABEL",
    "LOCKFILE_PATH_LABEL",
    "LOCKFILE_SHA256_LABEL",
    "OCI_REF_NAME_ANNOTATION",
    "OCI_TITLE_LABEL",
    "OCI_REVISION_LABEL",
    "OCI_BASE_NAME_LABEL",
    "OCI_BASE_DIGEST_LABEL",
    "APP_LAYER",
    "DIST_LINEAGE_SUBDIR",
    "DIST_RUNS_SUBDIR",
    "DIST_PUBLISH_SUBDIR",
    "DIST_SHARED_BLOBS_SUBDIR",
    "LINEAGE_STORE_DIR",
    "LOCAL_PUBLISH_DIR",
)
