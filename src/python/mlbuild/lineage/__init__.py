"""Lineage: content-addressed records of what built, ran and published which artifact."""
