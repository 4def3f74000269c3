"""Environment variables the kit's pytest plugin reads (a leaf: the plugin must import cheaply)."""

from __future__ import annotations

__all__ = ["PROFILE_ENV", "TEMP_REPORT_ENV"]

PROFILE_ENV = "TORCHEXEC_CONFORMANCE_PROFILE"
"""The profile when ``--conformance-profile`` is not given."""

TEMP_REPORT_ENV = "TORCHEXEC_CONFORMANCE_TEMPORARY_REPORT"
"""Set by ``torchexec.testing.main`` when the report goes to a temporary file it reads and then
deletes: the plugin then does not print the report's path."""
