"""Lineage that lives beside the artifacts, for a clone that has no local records.

    s3_records(uri)     every `<id>.json` record under an S3 prefix, each checked against its name
    job_records(name)   DescribeTrainingJob -> `<S3OutputPath>/<job>/mlbuild-lineage/` -> s3_records
    hash_records(hex)   SageMaker Search on the PEX / image tags -> each job's job_records
    image_records(ref)  an image's labels and its provenance referrer -> its package record

An AWS publish puts its records next to the model (publish/aws.py), and every image carries
its labels and provenance (pants_plugin/package.py), so each of these needs only the job name
or the image reference. Records are content-addressed, so fetching is copying: a record
whose bytes don't hash to its name is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, List, Mapping, Optional

from mlbuild.lineage import collect, provenance
from mlbuild.lineage.errors import NotFoundError, UserError
from mlbuild.lineage.record import Record, make_record
from mlbuild.oci.digest import digest_of
from mlbuild.oci.referrer import IN_TOTO_MEDIA_TYPE
from mlbuild.registry.reference import parse_reference
from mlbuild.registry.referrers import fetch_referrer
from mlbuild.registry.session import connect
from mlbuild.sagemaker.tags import IMAGE_DIGEST, PEX_SHA256, PIPELINE_ADDRESS, decode_value

RECORDS_FOLDER = "mlbuild-lineage"
_RECORD_KEY = re.compile(r"(?:^|/)([0-9a-f]{64})\.json$")


def s3_key(output_path: str, job_name: str, record_id: str) -> tuple[str, str]:
    """(bucket, key) of a job's record: `<output_path>/<job>/mlbuild-lineage/<id>.json`."""
    bucket, _, prefix = output_path[len("s3://") :].partition("/")
    return bucket, "/".join(p for p in (prefix.rstrip("/"), job_name, RECORDS_FOLDER, f"{record_id}.json") if p)


def s3_records(uri: str, s3: Any) -> List[Record]:
    """Every record under `s3://bucket/prefix`, oldest first."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not uri.startswith("s3://"):
        raise UserError(f"{uri}: expected an s3://bucket/prefix URI.")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    records = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                match = _RECORD_KEY.search(item["Key"])
                if not match:
                    continue
                data = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                if hashlib.sha256(data).hexdigest() != match.group(1):
                    raise UserError(f"s3://{bucket}/{item['Key']}: contents do not hash to the name; not a record mlbuild wrote.")
                records.append(Record.from_bytes(data))
    except (BotoCoreError, ClientError) as e:
        raise UserError(f"reading {uri}: {e}. Fix: check the URI, the AWS credentials and region.") from e
    return sorted(records, key=lambda r: (r.created, r.id))


def job_records(name: str, sagemaker: Any, s3: Any) -> List[Record]:
    """The records an AWS publish left beside the job's model."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        job = sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            raise NotFoundError(f"no SageMaker training job named {name!r} in {sagemaker.meta.region_name}.") from e
        raise UserError(f"DescribeTrainingJob {name}: {e}") from e
    except BotoCoreError as e:
        raise UserError(f"DescribeTrainingJob {name}: {e}. Fix: check the AWS credentials and region.") from e
    output = str(job.get("OutputDataConfig", {}).get("S3OutputPath") or "")
    if not output.startswith("s3://"):
        return []
    bucket, key = s3_key(output, name, "x")
    records = s3_records(f"s3://{bucket}/{key.rsplit('/', 1)[0]}/", s3)
    ended = ended_record(job, records, sagemaker)
    return records + [ended] if ended else records


TERMINAL = ("Completed", "Failed", "Stopped")


def ended_record(job: Mapping[str, Any], records: List[Record], sagemaker: Any) -> Optional[Record]:
    """A publish record of how the job ended, when the published one(s) only saw it start.

    `pants publish` without --wait records the job InProgress; SageMaker knows the rest. The
    record's time is the job's end, so every clone derives the same one.
    """
    status = job.get("TrainingJobStatus")
    published = [r for r in records if r.kind == "publish" and r.get("job.name") == job["TrainingJobName"]]
    if status not in TERMINAL or not job.get("TrainingEndTime") or any(r.status == status for r in published):
        return None
    known = {t["Key"]: t.get("Value", "") for t in sagemaker.list_tags(ResourceArn=job["TrainingJobArn"]).get("Tags", [])}
    pipeline = known.get(PIPELINE_ADDRESS) or (published[0].pipeline if published else None)
    if not pipeline:
        return None
    image = str(job.get("AlgorithmSpecification", {}).get("TrainingImage") or "")
    model = str(job.get("ModelArtifacts", {}).get("S3ModelArtifacts") or "")
    metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", []) if "MetricName" in m}
    return make_record(
        "publish",
        decode_value(pipeline),
        job["TrainingEndTime"],
        pex={"sha256": decode_value(known[PEX_SHA256])} if known.get(PEX_SHA256) else None,
        image={"ref": image, "manifest_digest": image.rsplit("@", 1)[1]} if "@" in image else None,
        job={
            "name": job["TrainingJobName"], "arn": job["TrainingJobArn"], "status": status,
            "region": sagemaker.meta.region_name,
            "start": job.get("TrainingStartTime"), "end": job["TrainingEndTime"],
        },  # fmt: skip
        model={"uri": model} if model else None,
        metrics=metrics or None,
        parents=[r.id for r in published] or None,
    )


# NB: the tags `publish` puts on every job (mlbuild.sagemaker.tags); values are exact strings.
SEARCHABLE_TAGS = ((PEX_SHA256, ""), (IMAGE_DIGEST, "sha256:"))


def hash_records(hex_digest: str, sagemaker: Any, s3: Any) -> List[Record]:
    """The records of every training job tagged with this PEX sha256 or image digest (a full hash)."""
    from botocore.exceptions import BotoCoreError, ClientError

    names: List[str] = []
    try:
        for tag, prefix in SEARCHABLE_TAGS:
            expression = {"Filters": [{"Name": f"Tags.{tag}", "Operator": "Equals", "Value": prefix + hex_digest}]}
            for page in sagemaker.get_paginator("search").paginate(Resource="TrainingJob", SearchExpression=expression):
                names += [r["TrainingJob"]["TrainingJobName"] for r in page.get("Results", []) if "TrainingJob" in r]
    except (BotoCoreError, ClientError) as e:
        raise UserError(f"SageMaker Search for {hex_digest[:12]}: {e}. Fix: check the AWS credentials and region.") from e
    records = {r.id: r for name in dict.fromkeys(names) for r in job_records(name, sagemaker, s3)}
    return sorted(records.values(), key=lambda r: (r.created, r.id))


def image_records(reference: str, environ: Optional[Mapping[str, str]] = None, **connect_kwargs: Any) -> List[Record]:
    """The package record of an image in a registry, from its labels and its provenance.

    `created` is the image config's (pinned at build), so every clone derives the same record.
    The provenance statement is checked to be about this image before it is used.
    """
    if environ is not None:
        connect_kwargs["env"] = environ
    # NB: registry errors are MLBuildErrors that already name the registry, repository and fix.
    digest, referrer = fetch_referrer(reference, IN_TOTO_MEDIA_TYPE, **connect_kwargs)
    ref = parse_reference(reference)
    client = connect(ref, push=False, **connect_kwargs)
    manifest_bytes, _, _ = client.get_manifest(digest)
    if digest_of(manifest_bytes) != digest:
        raise UserError(f"{reference}: the registry's manifest does not hash to {digest}.")
    manifest = json.loads(manifest_bytes)
    config_digest = manifest["config"]["digest"]
    config_bytes = _small_blob(client, config_digest)
    config = json.loads(config_bytes)
    labels = dict((config.get("config") or {}).get("Labels") or {})
    if not labels.get(collect.PIPELINE_LABEL):
        raise NotFoundError(f"{reference}: the image has no `{collect.PIPELINE_LABEL}` label; it was not built by mlbuild.")
    build = collect.ImageBuild(
        summary_path=Path(reference),
        ref=f"{ref.repo_uri}@{digest}",
        manifest_digest=digest,
        config_digest=config_digest,
        layers=[layer["digest"] for layer in manifest.get("layers", [])],
        diff_ids=list((config.get("rootfs") or {}).get("diff_ids") or []),
        labels=labels,
    )
    attached, config_path, config_sha = None, None, None
    if referrer is not None:
        statement = json.loads(referrer.payload)
        provenance.verify_statement(statement, digest)
        attached = {"digest": referrer.descriptor.digest, "statement_sha256": hashlib.sha256(referrer.payload).hexdigest(), "subject": digest}
        external = statement.get("predicate", {}).get("buildDefinition", {}).get("externalParameters", {})
        config_path, config_sha = (external.get("config") or {}).get("path"), (external.get("config") or {}).get("sha256")
    created = config.get("created") or "1970-01-01T00:00:00Z"
    return [collect.package_record(build, None, config_path, config_sha, created=created, provenance=attached)]


def _small_blob(client: Any, digest: str) -> bytes:
    chunks: List[bytes] = []
    client.get_blob(digest, lambda resp: chunks.extend(resp.stream(64 * 1024)))
    data = b"".join(chunks)
    if digest_of(data) != digest:
        raise UserError(f"blob {digest}: the registry sent bytes that hash to {digest_of(data)}.")
    return data
