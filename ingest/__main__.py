"""``python -m ingest``: the command-line loader."""

from ingest.cli import main

raise SystemExit(main())
