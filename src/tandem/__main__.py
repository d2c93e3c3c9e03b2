"""``python -m tandem``."""

from tandem.cli import main

raise SystemExit(main())
