"""The id check remembers ids it has passed, and nothing else: every refusal stands.

:func:`qaflow._checks.check_id` (and :func:`~qaflow._checks.ids_fit`, the command's one call
for all its ids) keep a bounded set of id texts that passed, so a command's repeated ids are a
set look-up. These tests check that a remembered id never lets a bad value through (a
different text, a ``str`` subclass, a value refused before) and that the memory stays bounded.
"""

from __future__ import annotations

import pytest

from qaflow import _checks
from qaflow._checks import MAX_ID_LENGTH, check_id, ids_fit
from qaflow.errors import ValidationError

BAD: tuple[object, ...] = (
    "",
    "x" * (MAX_ID_LENGTH + 1),
    "W-1\n",
    "W-1\x00",
    "\ud800",
    "tab\there",
    None,
    1,
    b"W-1",
)


class Text(str):
    """A ``str`` subclass: equal to an accepted id, but never taken from the memory."""


def test_a_remembered_id_passes_and_every_bad_value_is_still_refused() -> None:
    for good in ("W-1", "raise", "worker", "P-1", "é-ü ✓"):
        check_id("workflow_id", good)
        check_id("workflow_id", good)  # the second time from memory
        assert good in _checks._FITTING
        assert ids_fit(good, good, good, good, None)
        assert ids_fit(good, good, good, good, good)
    for bad in BAD:
        for _ in range(2):  # refused the first time and again: a refusal is never remembered
            with pytest.raises(ValidationError):
                check_id("workflow_id", bad)
            assert not ids_fit(bad, "raise", "P-1", "worker", None)
            assert not ids_fit("W-1", "raise", "P-1", "worker", bad if bad is not None else 1)
        assert not (type(bad) is str and bad in _checks._FITTING)


def test_a_str_subclass_is_checked_in_full_not_taken_from_memory() -> None:
    check_id("trigger", "raise")
    assert "raise" in _checks._FITTING
    assert not _checks._fits(Text("raise"))
    check_id("trigger", Text("raise"))  # accepted by the full check, as before
    assert not ids_fit(Text("raise"), "raise", "P-1", "worker", None)  # "check each one"
    with pytest.raises(ValidationError):
        check_id("trigger", Text("rai\nse"))


def test_the_memory_is_bounded() -> None:
    for i in range(_checks._FITTING_MAX + 10):
        check_id("workflow_id", f"W-{i}")
        assert len(_checks._FITTING) <= _checks._FITTING_MAX
    check_id("workflow_id", "W-after")
    assert "W-after" in _checks._FITTING


def test_remembered_payload_keys_never_let_a_bad_key_or_value_through() -> None:
    from qaflow._checks import check_payload

    assert check_payload({"reason": "late", "n": 1}) == {"reason": "late", "n": 1}
    assert "reason" in _checks._KEYS
    assert check_payload({"reason": "late"}) == {"reason": "late"}  # the key from memory
    for bad in ({"\ud800": 1}, {"reason": "\ud800"}, {"reason": float("nan")}, {1: "x"}):
        for _ in range(2):  # refused every time: a refused key is never remembered
            with pytest.raises(ValidationError):
                check_payload(bad)
    assert "\ud800" not in _checks._KEYS
    for i in range(_checks._KEYS_MAX + 10):
        check_payload({f"k{i}": i})
        assert len(_checks._KEYS) <= _checks._KEYS_MAX
