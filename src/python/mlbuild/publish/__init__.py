"""`pants publish` for ml_pipeline images: push the image, run the training job, report.

Two backends share one command (`python -m mlbuild.publish`, run by the Pants publish rule)
and one interface:

    backend.py  the `Backend` protocol (push, train, wait, report, record, transform) and
                which backend a publish uses
    workflow.py the one publish over that protocol: previous metrics from the lineage store,
                the `JobReport` (mlbuild.job_report), the record
    aws.py      AwsBackend: push to ECR, then submit a SageMaker training job (mlbuild.sagemaker)
    local.py    LocalBackend, the offline default: store the image in a local OCI store (or a
                local registry), run the job in mlbuild's SageMaker-style container runner, and
                keep model.tar.gz where SageMaker would put it
    model_archive.py  a deterministic model.tar.gz
    cli.py     the command line; errors become exit codes there only
"""
