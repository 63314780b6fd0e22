def test_a_packed_pex_is_named_by_the_sha256_of_its_sha256sum_listing(tmp_path) -> None:
    import hashlib
    import os
    import subprocess

    from mlbuild.lineage.digests import file_sha256, pex_sha256

    shared = tmp_path / "blobs"
    shared.mkdir()
    (shared / "wheel").write_bytes(b"a wheel")
    folder = tmp_path / "train.pex"
    (folder / ".deps").mkdir(parents=True)
    (folder / "pipelines" / "churn").mkdir(parents=True)
    (folder / "PEX-INFO").write_text("{}")
    (folder / "pipelines" / "churn" / "pipeline.py").write_text("x = 1\n")
    os.symlink(shared / "wheel", folder / ".deps" / "w-1.whl")  # as dist/ links the wheels
    listing = subprocess.run(
        "find -L . -type f | LC_ALL=C sort | xargs sha256sum", shell=True, cwd=folder, capture_output=True, check=True
    ).stdout
    built = pex_sha256(folder)
    assert built == hashlib.sha256(listing).hexdigest()
    # Running it writes bytecode beside the code: not what was built, not counted.
    (folder / "pipelines" / "churn" / "__pycache__").mkdir()
    (folder / "pipelines" / "churn" / "__pycache__" / "pipeline.cpython-311.pyc").write_bytes(b"pyc")
    assert pex_sha256(folder) == built
    assert pex_sha256(shared / "wheel") == file_sha256(shared / "wheel")  # a zipapp: the file's own
