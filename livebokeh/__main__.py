from livebokeh.entry import main

raise SystemExit(main())
