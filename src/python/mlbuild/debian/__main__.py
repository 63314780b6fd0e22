import sys

from mlbuild.debian.cli import main

sys.exit(main())
