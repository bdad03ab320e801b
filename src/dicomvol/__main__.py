"""``python -m dicomvol``: the same command line as ``dicomvol``."""

import sys

from dicomvol.cli.main import main

sys.exit(main())
