"""torchexec's conformance kit: proves an executor computes what the ``aten`` reference does.

Run it on an installed executor::

    pytest --pyargs torchexec.testing --executor my_executor [--conformance-profile ci]
    torchexec check my_executor                     # the same, through torchexec.testing.main

Its parts are reusable: hypothesis strategies that build valid random ATen programs
(:mod:`torchexec.testing.strategies`, over the operator catalog in
:mod:`torchexec.testing.catalog`), the comparison rules (:mod:`torchexec.testing.compare`), the
runner that judges one program on several executors (:mod:`torchexec.testing.runner`), the
skips file (:mod:`torchexec.testing.skips`), contract checks (:mod:`torchexec.testing.contract`),
the OpInfo tier (:mod:`torchexec.testing.opinfo`) and the report
(:mod:`torchexec.testing.report`).

Importing this package is cheap (pytest imports its plugin in every run); the names below load
their modules on first use.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
