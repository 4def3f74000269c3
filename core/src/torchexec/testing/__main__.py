"""``python -m torchexec.testing NAME [NAME...] [-- pytest args]``: run the conformance kit."""

from __future__ import annotations

import sys

from torchexec.testing._main import cli

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
