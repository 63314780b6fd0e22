"""mlbuild's OCI image library: build, store, read, check and safely unpack images.

Pure Python (stdlib, plus `isal` for speed when installed); it never imports Pants, so
the Pants rules only run `python -m mlbuild.oci ...` as a `Process`.

    descriptor.py         Descriptor: mediaType + digest + size (+ annotations)
    layer.py              Layer (compressed digest and uncompressed DiffID kept apart), LayerEntry
    image.py              Image: config + layers, and pure transforms (add layer, set config, canonical)
    determinism.py        every reproducibility knob: epoch, tar normalisation, gzip header, compressor
    layer_writer.py       tar + gzip streamed to a BlobStore, with a DiffID -> digest cache
    layout.py, archive.py OCI image layout directory and oci-archive tarball
    unpack.py             safe layer application into a rootfs
    sagemaker_contract.py build-time checks of SageMaker's bring-your-own-container contract
    cli.py                `python -m mlbuild.oci build|unpack|check`
"""
