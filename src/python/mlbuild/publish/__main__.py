import sys

from mlbuild.publish.cli import main

sys.exit(main())
