"""Hypothesis profiles and the hostile-text strategies shared by the property suites.

``HYPOTHESIS_PROFILE=ci`` (default) keeps each property test to a CI-sized number of examples; ``long`` runs
thousands on demand:

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -q tests/test_hardening.py tests/test_adapter_contract.py
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile("ci", max_examples=25, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def fewer_in_ci(examples: int) -> settings:
    """``examples`` per test under the ``ci`` profile (for slow properties), the profile's own count otherwise."""
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        return settings(max_examples=examples)
    return settings()


# Text that a hostile user could send: any unicode (no lone surrogates: those are refused, tested in
# test_hardening), special-token strings, and whitespace.
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[SEP]", "[CLS]", "</s>", "\x00"]
texts = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
    st.sampled_from(SPECIALS),
    st.lists(st.sampled_from([*SPECIALS, "word", " ", "\n", "東京", "🚀"]), max_size=30).map("".join),
)
queries = texts.filter(lambda q: q.strip() != "")
