from avsep.cli import main

raise SystemExit(main())
