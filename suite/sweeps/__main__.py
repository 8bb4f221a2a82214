"""`python -m suite.sweeps ...` = `suite sweep ...`."""
import sys

from suite.cli import main

sys.exit(main(["sweep", *sys.argv[1:]]))
