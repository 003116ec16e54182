"""Grades and grading rules of an audit tool, as frozen, validated procedure data.

An audit's overall grade is an Ofsted :class:`Grade`. A council's tool reaches it one of three
ways: a 0-10 score mapped through :class:`GradeBands` (BX-AUD-06), a three-level
:class:`Judgement` mapped through a :class:`JudgementScale` (BK-AUD-01), or the grade itself,
given directly (:func:`direct_grade`, a four-level Ofsted-grade tool). Every definition is
checked when it is built: a bad one raises :class:`~qaflow.errors.PolicyError` naming the
offending part; a bad answer raises :class:`~qaflow.errors.ValidationError` naming the field.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, TypeGuard

import attrs

from qaflow.errors import PolicyError, ValidationError

__all__ = [
    "GRADE_VALUES",
    "Grade",
    "GradeBands",
    "Judgement",
    "JudgementScale",
    "ScoreBand",
    "direct_grade",
]

_SCALE_MIN: Final = 0
_SCALE_MAX: Final = 10
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _is_int(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an integer; ``bool`` is refused because ``True`` is no score."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_ident(what: str, value: object, clause: str | None) -> None:
    """Refuse an id that could not be used as a key in an answer or an error's field name."""
    if not isinstance(value, str) or not _IDENT.match(value):
        raise PolicyError(
            f"{what} must be an identifier (a letter, then letters, digits or '_'), got {value!r}",
            clause=clause,
        )


def _check_text(what: str, value: object, clause: str | None) -> None:
    """Refuse a missing or blank label: every form element must say what it asks."""
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{what} must be a non-empty string, got {value!r}", clause=clause)


class Grade(enum.IntEnum):
    """An Ofsted grade, ordered worst to best so that ``grade < Grade.GOOD`` reads naturally."""

    INADEQUATE = 1
    REQUIRES_IMPROVEMENT = 2
    GOOD = 3
    OUTSTANDING = 4

    @property
    def label(self) -> str:
        """The grade as Ofsted writes it, e.g. ``"Requires improvement"``."""
        return _GRADE_LABELS[self]

    def __repr__(self) -> str:
        # A valid expression, so hypothesis failures and attrs reprs can be pasted back.
        return f"Grade.{self.name}"


_GRADE_LABELS: Final[Mapping[Grade, str]] = MappingProxyType(
    {
        Grade.INADEQUATE: "Inadequate",
        Grade.REQUIRES_IMPROVEMENT: "Requires improvement",
        Grade.GOOD: "Good",
        Grade.OUTSTANDING: "Outstanding",
    }
)


class Judgement(enum.StrEnum):
    """The three-level judgement of a Strengthening Families audit field (BK-AUD-01)."""

    EXCEEDS_GOOD = "exceeds_good"
    MEETS_GOOD = "meets_good"
    DOES_NOT_MEET_GOOD = "does_not_meet_good"

    def __repr__(self) -> str:
        return f"Judgement.{self.name}"

    def __str__(self) -> str:
        # As StrEnum would (it is 3.11+; qaflow supports 3.10): the value, as stored.
        return self.value


def _show_band(band: ScoreBand) -> str:
    return f"{band.low}..{band.high} ({band.grade.label})"


@attrs.frozen
class ScoreBand:
    """Scores ``low`` to ``high`` inclusive map to ``grade``."""

    low: int
    high: int
    grade: Grade

    def __attrs_post_init__(self) -> None:
        if not (_is_int(self.low) and _is_int(self.high)):
            raise PolicyError(
                f"a score band's bounds must be integers, got low={self.low!r}, high={self.high!r}"
            )
        if not isinstance(self.grade, Grade):
            raise PolicyError(f"a score band's grade must be a Grade, got {self.grade!r}")
        if self.low > self.high:
            raise PolicyError(f"score band {self.low}..{self.high} is empty (low > high)")


def _sorted_bands(bands: Iterable[ScoreBand]) -> tuple[ScoreBand, ...]:
    """Keep bands in score order, so equal band sets compare equal however they were listed."""
    items = tuple(bands)
    for band in items:
        if not isinstance(band, ScoreBand):
            raise PolicyError(f"grade bands must be ScoreBand instances, got {band!r}")
    return tuple(sorted(items, key=lambda b: (b.low, b.high)))


@attrs.frozen(kw_only=True)
class GradeBands:
    """Maps every score of a closed integer scale to a grade (BX-AUD-06).

    Built only if the bands are sound: they cover ``scale_min..scale_max`` with no gap
    and no overlap, and a higher score never maps to a worse grade. Bands may be listed in
    any order; they are kept sorted by score.
    """

    bands: tuple[ScoreBand, ...] = attrs.field(converter=_sorted_bands)
    scale_min: int = _SCALE_MIN
    scale_max: int = _SCALE_MAX
    clause: str | None = None
    _by_score: tuple[Grade, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        clause = self.clause
        if not (_is_int(self.scale_min) and _is_int(self.scale_max)):
            raise PolicyError(
                f"a scale's bounds must be integers, got {self.scale_min!r}..{self.scale_max!r}",
                clause=clause,
            )
        if self.scale_min > self.scale_max:
            raise PolicyError(f"scale {self.scale_min}..{self.scale_max} is empty", clause=clause)
        if not self.bands:
            raise PolicyError("grade bands must list at least one band", clause=clause)
        scale = f"scale {self.scale_min}..{self.scale_max}"
        for band in self.bands:
            if band.low < self.scale_min or band.high > self.scale_max:
                raise PolicyError(
                    f"grade bands: band {_show_band(band)} lies outside the {scale}", clause=clause
                )
        first, last = self.bands[0], self.bands[-1]
        if first.low != self.scale_min:
            raise PolicyError(
                f"grade bands: scores {self.scale_min}..{first.low - 1} of the {scale} have no "
                f"band (first band is {_show_band(first)})",
                clause=clause,
            )
        for before, after in zip(self.bands, self.bands[1:], strict=False):
            if after.low > before.high + 1:
                raise PolicyError(
                    f"grade bands: gap between bands {_show_band(before)} and {_show_band(after)}: "
                    f"scores {before.high + 1}..{after.low - 1} have no band",
                    clause=clause,
                )
            if after.low <= before.high:
                raise PolicyError(
                    f"grade bands: bands {_show_band(before)} and {_show_band(after)} overlap on "
                    f"scores {after.low}..{min(before.high, after.high)}",
                    clause=clause,
                )
            if after.grade < before.grade:
                raise PolicyError(
                    f"grade bands: band {_show_band(after)} maps higher scores to a worse grade "
                    f"than band {_show_band(before)}",
                    clause=clause,
                )
        if last.high != self.scale_max:
            raise PolicyError(
                f"grade bands: scores {last.high + 1}..{self.scale_max} of the {scale} have no "
                f"band (last band is {_show_band(last)})",
                clause=clause,
            )
        lookup = tuple(band.grade for band in self.bands for _ in range(band.low, band.high + 1))
        object.__setattr__(self, "_by_score", lookup)

    def grade_for(self, score: object, *, field: str = "score") -> Grade:
        """The grade of ``score``; a non-integer or off-scale score raises ValidationError."""
        if _is_int(score) and self.scale_min <= score <= self.scale_max:
            return self._by_score[score - self.scale_min]
        raise ValidationError(
            field=field,
            value=score,
            expected=f"an integer in {self.scale_min}..{self.scale_max}",
        )


@attrs.frozen(kw_only=True)
class JudgementScale:
    """Maps each three-level judgement to an Ofsted grade (BK-AUD-01).

    The mapping must agree with the judgements' names: ``meets_good`` is Good,
    ``exceeds_good`` is Good or better, ``does_not_meet_good`` is worse than Good. That
    makes it monotone: a better judgement never maps to a worse grade.
    """

    exceeds_good: Grade
    meets_good: Grade
    does_not_meet_good: Grade
    clause: str | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("exceeds_good", "meets_good", "does_not_meet_good"):
            if not isinstance(getattr(self, name), Grade):
                raise PolicyError(
                    f"judgement {name!r} must map to a Grade, got {getattr(self, name)!r}",
                    clause=self.clause,
                )
        if self.meets_good is not Grade.GOOD:
            raise PolicyError(
                f"'meets_good' must map to Grade.GOOD, got {self.meets_good!r}",
                clause=self.clause,
            )
        if self.exceeds_good < Grade.GOOD:
            raise PolicyError(
                f"'exceeds_good' must map to Good or better, got {self.exceeds_good!r}",
                clause=self.clause,
            )
        if self.does_not_meet_good >= Grade.GOOD:
            raise PolicyError(
                "'does_not_meet_good' must map to a grade worse than Good, "
                f"got {self.does_not_meet_good!r}",
                clause=self.clause,
            )

    def as_mapping(self) -> Mapping[Judgement, Grade]:
        """The scale as a read-only mapping, best judgement first."""
        return MappingProxyType(
            {
                Judgement.EXCEEDS_GOOD: self.exceeds_good,
                Judgement.MEETS_GOOD: self.meets_good,
                Judgement.DOES_NOT_MEET_GOOD: self.does_not_meet_good,
            }
        )

    def grade_for(self, judgement: object, *, field: str = "judgement") -> Grade:
        """The grade of ``judgement`` (a :class:`Judgement` or its string value)."""
        return self.as_mapping()[_judgement(judgement, field)]


def _judgement(value: object, field: str) -> Judgement:
    """Parse a judgement; anything but one of the three values raises ValidationError."""
    if isinstance(value, str):
        try:
            return Judgement(value)
        except ValueError:
            pass
    raise ValidationError(
        field=field,
        value=value,
        expected="one of " + ", ".join(repr(j.value) for j in Judgement),
    )


#: How a grade is written in a procedure file and in a direct grading answer.
GRADE_VALUES: Final[Mapping[str, Grade]] = MappingProxyType({g.name.lower(): g for g in Grade})


def direct_grade(value: object, *, field: str = "grade") -> Grade:
    """The grade written as ``value`` (``"good"``, ``"requires_improvement"``...).

    A four-level Ofsted-grade tool asks for the grade itself; anything else raises
    :class:`ValidationError` naming ``field`` and the four accepted values.
    """
    if isinstance(value, str) and value in GRADE_VALUES:
        return GRADE_VALUES[value]
    raise ValidationError(
        field=field, value=value, expected="one of " + ", ".join(map(repr, GRADE_VALUES))
    )
