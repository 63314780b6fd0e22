"""`./pants ml VERB`: the one command line for people (see cli.py)."""
