import sys

from mlbuild.oci.cli import main

sys.exit(main())
