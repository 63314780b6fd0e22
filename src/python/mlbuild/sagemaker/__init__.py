"""Submitting, following and reporting SageMaker training jobs (boto3 only, no Pants).

Modules, one concept each:

    env.py          the AWS env vars a Pants rule must forward (imports nothing heavy)
    errors.py       AwsError (platform), JobConflictError / JobFailedError
    aws.py          boto3 clients and every AWS/moto quirk, in one place
    image_ref.py    digest-pinned image URIs
    tags.py         SageMaker tag encoding (charset and length limits)
    job_request.py  PipelineConfig + inputs -> validated CreateTrainingJob request
    job_name.py     deterministic job names from the request hash
    submit.py       describe-before-create idempotent submission
    links.py        console, CloudWatch and model-artifact addresses
    report.py       a job's `JobReport` (mlbuild.job_report) from its request, description and outcome
    log_tail.py     CloudWatch Logs streaming for a job
    wait.py         follow a job to its end
    s3_data.py      pull an S3 channel to a local folder with a checksum manifest
    cli.py          `./pants mlbuild submit|wait|transform|pull-data`

NB: importing this package must stay free of side effects and of boto3, so the Pants
plugin (its own resolve, CPython 3.9) can import `env.FORWARDED_ENV_VARS` alone.
"""
