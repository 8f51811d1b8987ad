"""``python -m hub`` runs the ``hub`` command."""

import sys

from hub.cli import main

sys.exit(main())
