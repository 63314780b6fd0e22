import sys

from mlbuild.lineage.cli import main

sys.exit(main())
