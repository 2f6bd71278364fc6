"""`python -m physprior ...`: the same command line as the `physprior` script."""

import sys

from physprior.cli import main

if __name__ == "__main__":
    sys.exit(main())
