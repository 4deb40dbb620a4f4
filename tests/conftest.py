"""Test-wide settings: Hypothesis runs derandomized under CI, so a submission's test run is
reproducible; locally it explores fresh examples each run."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
