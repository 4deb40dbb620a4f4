"""The worked example, computed once for every test that reads it: CRAFTWERK station against
8 x H100 on Llama-3.1-70B (1,024 / 256 tokens) at the default service level, with the tornado
over the plausible ranges and the equal-load comparison (~12 s)."""

from __future__ import annotations

import pytest

from tegel.economics.claim import Claim, claim


@pytest.fixture(scope="session")
def worked_example() -> Claim:
    return claim("llama-3.1-70b", "craftwerk-station", "dgx-h100")
