import sys

from suite.sweeps.cli import main

sys.exit(main())
