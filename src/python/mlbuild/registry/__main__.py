from mlbuild.registry.cli import main

raise SystemExit(main())
