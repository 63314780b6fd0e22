import sys

from mlbuild.sagemaker.cli import main

sys.exit(main())
