"""mlbuild's Pants backend: the `ml_pipeline` target and its run/package rules."""


def target_types():
    return []


def rules():
    return []
