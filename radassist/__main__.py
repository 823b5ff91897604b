"""``python -m radassist`` is the same as the ``radassist`` command."""

from radassist.cli import main

raise SystemExit(main())
