from kdstudio.cli import main

raise SystemExit(main())
