"""Predictions from a pipeline's model: SageMaker's `serve` contract and its batch transform.

Plain Python (never imports Pants, lineage, publish or boto3: the image ships it).

    content_types.py  request bodies -> records, predictions -> bodies, Accept negotiation
    predictor.py      the pipeline's load_model/predict stages around one loaded model
    app.py            the WSGI app: /ping, /invocations, clear 4xx and 5xx
    server.py         the server bound to $SAGEMAKER_BIND_TO_PORT (8080): a front before forked workers
    front.py          asyncio HTTP front: reads whole requests (with time limits), answers /ping itself
    workers.py        pre-forked prediction workers behind a bounded queue: 503, 504, 502, replaced
    transform.py      the batch-transform agent: input files -> /invocations -> `<input>.out`
    local_server.py   `serve` for a model folder on loopback, in a child process
    model_source.py   a model folder, or a model.tar.gz unpacked safely as SageMaker does
    cli.py            `serve` (no arguments: SageMaker's) and `transform`
"""
