"""``python -m torchexec``: the ``torchexec`` command (``torchrun ... -m torchexec run ...``)."""

from torchexec._cli import main

raise SystemExit(main())
