"""``python -m cnnzoo`` (and ``torchrun -m cnnzoo``) runs the command line."""

import sys

from cnnzoo.cli import main

sys.exit(main())
