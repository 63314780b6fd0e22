"""Replay a training job locally and say whether it came out the same.

Plain Python (never imports Pants). A job is named by its local-backend name, a lineage
hash that leads to it (image digest, model sha256, record id; a unique prefix is enough)
or a SageMaker job name/ARN. Its image is run by digest (never rebuilt) in the container
runner, with the hyperparameter strings and the data the job had, and the replay's model
files and metrics are compared with the job's.

    job.py      ReplayJob: what the job ran and produced; resolve() from a name or hash
    image.py    the job's image as an OCI layout (local store or pulled into the cache)
                and the pipeline config packaged inside it
    data.py     the job's data, checked against its pins, as a data folder for the runner
    verdict.py  identical / metrics differ / model differs / failures, and exit codes
    replay.py   replay(): the steps in order, and the replay's lineage record
    cli.py      `./pants mlbuild replay`
"""
