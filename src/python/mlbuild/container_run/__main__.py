import sys

from mlbuild.container_run.cli import main

sys.exit(main())
