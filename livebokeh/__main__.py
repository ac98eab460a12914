from livebokeh.cli import main

raise SystemExit(main())
