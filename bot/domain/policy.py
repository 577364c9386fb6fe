"""The policy: tracks, deadlines, chasing ladder, callback timing, units and routing.

Everything a city may want to tune is data here, loaded from the policy TOML by
`bot.config.load_policy`; the domain reads it and never hard-codes a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.calendar import WorkingCalendar


class Track(StrEnum):
    """The four tracks of 分类施策."""

    SPECIAL = "special"  # 特别办
    ROUTINE = "routine"  # 及时办
    COORDINATED = "coordinated"  # 协调办
    HIGH_LEVEL = "high_level"  # 高位办


@dataclass(frozen=True)
class Duration:
    """A deadline length: wall-clock hours, or working days on the working calendar."""

    amount: float
    unit: str  # "h" wall-clock hours, "d" working days

    def after(self, start: datetime, calendar: WorkingCalendar) -> datetime:
        """The moment this duration ends when it starts at `start`."""
        if self.unit == "h":
            return start + timedelta(hours=self.amount)
        return calendar.add_working_days(start, self.amount)

    def __str__(self) -> str:
        amount = int(self.amount) if self.amount == int(self.amount) else self.amount
        return f"{amount}{self.unit}"


@dataclass(frozen=True)
class TrackPolicy:
    """Deadlines and handling rules of one track."""

    track: Track
    sign: Duration
    reply: Duration
    resolve: Duration
    review_before_publish: bool = False
    around_the_clock: bool = False  # chased outside working hours too


@dataclass(frozen=True)
class Named:
    """A code with names per language (zh_Hans is the default name)."""

    code: str
    name: str
    names: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def name_in(self, language: str) -> str:
        """The name in a language, falling back to the default (Simplified Chinese)."""
        return self.names.get(language, self.name)


@dataclass(frozen=True)
class UnitDef(Named):
    """A government unit declared in the policy."""

    parent: str | None = None


@dataclass(frozen=True)
class RoutingRule:
    """Suggest `unit` for cases of `category` and/or `district` (empty matches any)."""

    unit: str
    category: str | None = None
    district: str | None = None

    def matches(self, category: str, district: str) -> bool:
        """Whether the rule applies to a case of this category and district."""
        return (self.category in (None, category)) and (self.district in (None, district))

    @property
    def specificity(self) -> int:
        """Rules naming both category and district beat rules naming one."""
        return (self.category is not None) + (self.district is not None)


@dataclass(frozen=True)
class ChasingPolicy:
    """The reminder and escalation ladder of DESIGN §4."""

    reminder_at: float = 0.75  # fraction of each window
    supervision_after_days: float = 2  # working days overdue
    leaders_after_days: float = 5
    max_returns: int = 2  # returns of one case before it goes to the supervisor


@dataclass(frozen=True)
class CallbackPolicy:
    """Satisfaction callback timing (回访) and reopening."""

    reminder_after: timedelta = timedelta(days=1)
    close_after: timedelta = timedelta(days=3)
    max_rounds: int = 2  # after this many rounds an unsatisfied rating goes to the desk


@dataclass(frozen=True)
class ReportPolicy:
    """Report schedule and ranking rules."""

    weekly_weekday: int = 0  # Monday
    weekly_time: str = "09:00"
    daily_time: str = "08:30"
    min_cases_for_ranking: int = 5
    quarterly_to_units: bool = True
    weights: dict[str, float] = field(
        default_factory=lambda: {"reply_rate": 0.3, "on_time_rate": 0.3, "satisfaction_rate": 0.4}
    )


@dataclass(frozen=True)
class Limits:
    """Input limits that protect the desk and the database."""

    text_min: int = 5
    text_max: int = 2000
    answer_max: int = 3500
    note_max: int = 1000
    attachments_max: int = 9
    attachment_max_bytes: int = 20 * 1024 * 1024
    filings_per_hour: int = 5
    repeat_window_hours: int = 24  # the same text again within this is linked, not filed
    updates_burst: int = 60  # updates one person may send at once before being throttled
    updates_per_minute: int = 60  # how fast a throttled person's allowance refills


@dataclass(frozen=True)
class Policy:
    """The whole policy file, validated."""

    city: str
    case_prefix: str
    calendar: WorkingCalendar
    tracks: dict[Track, TrackPolicy]
    categories: dict[str, Named]
    districts: dict[str, Named]
    units: dict[str, UnitDef]
    routing: tuple[RoutingRule, ...] = ()
    chasing: ChasingPolicy = ChasingPolicy()
    callback: CallbackPolicy = CallbackPolicy()
    reports: ReportPolicy = ReportPolicy()
    limits: Limits = Limits()
    extension_cap_days: float = 15
    pause_resolve_while_asking: bool = True
    reject_reasons: tuple[str, ...] = ("invalid", "duplicate", "out_of_scope")

    def track(self, track: Track | str) -> TrackPolicy:
        """The policy of a track (raises KeyError for an unknown track)."""
        return self.tracks[Track(track)]

    def suggest_units(self, category: str, district: str) -> list[str]:
        """Units the routing rules suggest for a case, most specific first, no repeats."""
        matching = sorted(
            (rule for rule in self.routing if rule.matches(category, district)),
            key=lambda rule: -rule.specificity,
        )
        suggestions: list[str] = []
        for rule in matching:
            if rule.unit not in suggestions:
                suggestions.append(rule.unit)
        return suggestions
