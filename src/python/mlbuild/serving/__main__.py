import sys

from mlbuild.serving.cli import main

sys.exit(main())
