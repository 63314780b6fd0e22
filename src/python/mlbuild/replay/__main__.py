import sys

from mlbuild.replay.cli import main

sys.exit(main())
