"""A pipeline's zipapp PEX assembled from its cached requirements-only PEX and its code."""
