"""`./pants mlbuild VERB`: the one command line for people (see cli.py)."""
