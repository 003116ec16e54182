"""The hand-written UTC text of a moment is ``astimezone(UTC).isoformat()``, byte for byte.

The event hash and the escalation stage history are built from this text, so any difference
(padding, microseconds, the offset) would change every stored hash: these tests compare the
two over every kind of moment the engine sees and over generated ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from qaflow._timetext import _written, utc_isoformat

LONDON = ZoneInfo("Europe/London")


def _reference(moment: datetime) -> str:
    """The reference text; also checks the formatter itself, past the cache in front of it."""
    expected = moment.astimezone(UTC).isoformat()
    assert _written(moment.astimezone(UTC)) == expected
    return expected


def test_utc_moments_at_the_edges_of_every_field() -> None:
    """Years with leading zeros, the first and last of each field, microseconds with and
    without leading zeros, and a zero microsecond (no fraction at all)."""
    years = (1, 9, 10, 99, 100, 999, 1000, 1970, 2000, 2025, 9999)
    micros = (0, 1, 9, 10, 99, 100, 999, 1000, 99999, 100000, 500000, 999999)
    for year in years:
        for month, day in ((1, 1), (2, 28), (12, 31)):
            for hour, minute, second in ((0, 0, 0), (9, 5, 7), (23, 59, 59)):
                for micro in micros:
                    moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
                    assert utc_isoformat(moment) == _reference(moment), moment


def test_every_second_of_a_day_and_every_day_of_a_year() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for seconds in range(0, 86_400, 7):
        moment = start + timedelta(seconds=seconds, microseconds=seconds * 13 % 1_000_000)
        assert utc_isoformat(moment) == _reference(moment)
    for days in range(366):
        moment = start + timedelta(days=days, hours=days % 24)
        assert utc_isoformat(moment) == _reference(moment)


def test_other_zones_are_converted_to_utc_first() -> None:
    zones = (LONDON, ZoneInfo("UTC"), timezone(timedelta(0)), timezone(timedelta(hours=-5)),
             timezone(timedelta(hours=5, minutes=30)), ZoneInfo("Pacific/Chatham"))  # fmt: skip
    for zone in zones:
        for moment in (
            datetime(2025, 3, 30, 0, 30, tzinfo=zone),  # London's spring change
            datetime(2025, 10, 26, 1, 30, fold=1, tzinfo=zone),  # its autumn change, repeated
            datetime(2025, 6, 27, 23, 59, 59, 999999, tzinfo=zone),
            datetime(2000, 1, 1, tzinfo=zone),
        ):
            assert utc_isoformat(moment) == _reference(moment), (zone, moment)
            assert utc_isoformat(moment).endswith("+00:00")


def test_a_naive_moment_reads_as_local_time_as_astimezone_does() -> None:
    moment = datetime(2025, 6, 1, 12, 0, 0, 250)
    assert utc_isoformat(moment) == _reference(moment)


def test_remembered_text_is_the_instant_s_in_any_zone() -> None:
    """The cache is keyed by the instant: the same instant in another zone, seen first or
    second, gives the same UTC text."""
    utc = datetime(2025, 7, 1, 9, 30, 0, 1200, tzinfo=UTC)
    for moment in (utc.astimezone(LONDON), utc, utc.astimezone(timezone(timedelta(hours=-3)))):
        assert utc_isoformat(moment) == "2025-07-01T09:30:00.001200+00:00"


def test_a_datetime_subclass_formats_itself() -> None:
    class Shown(datetime):
        def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
            return "shown"

    assert utc_isoformat(Shown(2025, 1, 2, tzinfo=UTC)) == "shown"


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_generated_utc_moments(naive: datetime) -> None:
    moment = naive.replace(tzinfo=UTC)
    assert utc_isoformat(moment) == _reference(moment)


_ZONES = [
    LONDON,
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),
    timezone(timedelta(hours=14)),
    timezone(-timedelta(hours=23, minutes=59)),
]


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(_ZONES),
    )
)
def test_generated_moments_in_other_zones(moment: datetime) -> None:
    assert utc_isoformat(moment) == _reference(moment)
