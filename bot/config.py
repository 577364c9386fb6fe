"""Settings from the environment and the policy from its TOML file, both validated at start."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot.domain.calendar import WorkingCalendar, YearSchedule
from bot.domain.policy import (
    CallbackPolicy,
    ChasingPolicy,
    Duration,
    Limits,
    Named,
    Policy,
    ReportPolicy,
    RoutingRule,
    Track,
    TrackPolicy,
    UnitDef,
)

EXAMPLE_POLICY = Path(__file__).parent / "policy" / "example.toml"
DEFAULT_DATABASE = Path("data") / "wenzheng.db"
LANGUAGES = ("zh_Hans", "zh_Hant", "en")


class PolicyError(ValueError):
    """The policy file is wrong; the message names the key and what is wrong with it."""


class SettingsError(ValueError):
    """A setting from the environment is wrong; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything read from `WENZHENG_*` variables (and an optional `.env` file)."""

    token: str | None = None
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    database: Path = DEFAULT_DATABASE
    policy: Path = EXAMPLE_POLICY
    admins: tuple[int, ...] = ()
    webhook_url: str | None = None
    webhook_secret: str | None = None
    listen: str = "127.0.0.1:8080"
    metrics_port: int | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    tz: str | None = None
    # Telegram's flood limits kept on our side (PTB's AIORateLimiter); off only against a
    # Bot API that has none, e.g. the local simulator under load tests.
    rate_limit: bool = True
    extra: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        # Secrets must never reach a log line through a repr of the settings.
        return (
            f"Settings(token={'***' if self.token else None}, database={self.database!s}, "
            f"policy={self.policy!s}, admins={self.admins}, webhook_url={self.webhook_url})"
        )

    @classmethod
    def from_env(
        cls, environ: dict[str, str] | None = None, env_file: Path | None = Path(".env")
    ) -> Settings:
        """Read settings; real environment variables win over the `.env` file."""
        values: dict[str, str] = {}
        if env_file is not None and env_file.is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = values.get(f"WENZHENG_{name}")
            return value.strip() if value and value.strip() else None

        admins: list[int] = []
        for part in (get("ADMINS") or "").split(","):
            if part.strip():
                if not part.strip().lstrip("-").isdigit():
                    raise SettingsError(
                        f"WENZHENG_ADMINS: {part.strip()!r} is not a Telegram user id"
                    )
                admins.append(int(part))
        metrics = get("METRICS_PORT")
        if metrics is not None and not metrics.isdigit():
            raise SettingsError(f"WENZHENG_METRICS_PORT: {metrics!r} is not a port number")
        log_format = (get("LOG_FORMAT") or "text").lower()
        if log_format not in ("text", "json"):
            raise SettingsError("WENZHENG_LOG_FORMAT: must be 'text' or 'json'")
        rate_limit = (get("RATE_LIMIT") or "on").lower()
        if rate_limit not in ("on", "off"):
            raise SettingsError("WENZHENG_RATE_LIMIT: must be 'on' or 'off'")
        return cls(
            token=get("TOKEN"),
            api_base_url=get("API_BASE_URL") or cls.api_base_url,
            file_base_url=get("FILE_BASE_URL") or cls.file_base_url,
            database=Path(get("DATABASE") or DEFAULT_DATABASE),
            policy=Path(get("POLICY") or EXAMPLE_POLICY),
            admins=tuple(admins),
            webhook_url=get("WEBHOOK_URL"),
            webhook_secret=get("WEBHOOK_SECRET"),
            listen=get("LISTEN") or cls.listen,
            metrics_port=int(metrics) if metrics else None,
            log_level=(get("LOG_LEVEL") or "INFO").upper(),
            log_format=log_format,
            tz=get("TZ"),
            rate_limit=rate_limit == "on",
        )


# -- policy -----------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|d)\s*$")
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_PREFIX = re.compile(r"^[A-Z]{1,6}$")


def _expect(value: Any, kind: type | tuple[type, ...], key: str, what: str) -> Any:
    if (
        isinstance(value, bool)
        and kind is not bool
        and bool not in (kind if isinstance(kind, tuple) else (kind,))
    ):
        raise PolicyError(f"{key}: expected {what}, got {value!r}")
    if not isinstance(value, kind):
        raise PolicyError(f"{key}: expected {what}, got {value!r}")
    return value


def _duration(value: Any, key: str) -> Duration:
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not match or float(match.group(1)) <= 0:
        raise PolicyError(
            f"{key}: expected a duration like '3d' (working days) or '2h' (hours), got {value!r}"
        )
    return Duration(float(match.group(1)), match.group(2))


def _clock_time(value: Any, key: str) -> time:
    try:
        return time.fromisoformat(_expect(value, str, key, "a time like '09:00'"))
    except ValueError:
        raise PolicyError(f"{key}: expected a time like '09:00', got {value!r}") from None


def _dates(value: Any, key: str) -> list[date]:
    items = _expect(value, list, key, "a list of dates")
    result: list[date] = []
    for index, item in enumerate(items):
        if isinstance(item, date):
            result.append(item)
            continue
        try:
            result.append(date.fromisoformat(str(item)))
        except ValueError:
            raise PolicyError(
                f"{key}[{index}]: expected a date like 2027-01-01, got {item!r}"
            ) from None
    return result


def _named_list(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key)
    if not items:
        raise PolicyError(f"{key}: at least one entry is required")
    return _expect(items, list, key, "a list of tables ([[...]])")


def _named(entry: Any, key: str) -> tuple[str, str, dict[str, str]]:
    _expect(entry, dict, key, "a table")
    code = entry.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        raise PolicyError(f"{key}.code: expected a short code of letters and digits, got {code!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"{key}.name: a non-empty name is required")
    names = entry.get("names", {})
    _expect(names, dict, f"{key}.names", "a table of language = name")
    for language in names:
        if language not in LANGUAGES:
            raise PolicyError(
                f"{key}.names.{language}: unknown language; use one of {', '.join(LANGUAGES)}"
            )
    return code, name, {"zh_Hans": name, **names}


def _unique(codes: list[str], key: str) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise PolicyError(f"{key}: code {code!r} appears twice")
        seen.add(code)


def parse_policy(data: dict[str, Any]) -> Policy:
    """Validate a parsed policy TOML and build the `Policy`; PolicyError names the bad key."""
    city = data.get("city", {})
    _expect(city, dict, "city", "a table")
    city_name = _expect(city.get("name", "示例市"), str, "city.name", "a name")
    prefix = _expect(city.get("case_prefix", "CZ"), str, "city.case_prefix", "a prefix")
    if not _PREFIX.match(prefix):
        raise PolicyError(f"city.case_prefix: expected 1–6 capital letters, got {prefix!r}")
    tz_name = _expect(city.get("timezone", "Asia/Shanghai"), str, "city.timezone", "a time zone")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"city.timezone: unknown time zone {tz_name!r}") from None

    hours = data.get("working_hours", {})
    _expect(hours, dict, "working_hours", "a table")
    day_start = _clock_time(hours.get("start", "09:00"), "working_hours.start")
    day_end = _clock_time(hours.get("end", "17:30"), "working_hours.end")
    if day_start >= day_end:
        raise PolicyError("working_hours: start must be before end")

    cal = data.get("calendar", {})
    _expect(cal, dict, "calendar", "a table")
    kind = cal.get("kind", "official")
    if kind not in ("official", "weekdays"):
        raise PolicyError(f"calendar.kind: expected 'official' or 'weekdays', got {kind!r}")
    years: list[YearSchedule] = []
    for year_key, schedule in _expect(
        cal.get("years", {}), dict, "calendar.years", "a table"
    ).items():
        key = f"calendar.years.{year_key}"
        if not str(year_key).isdigit():
            raise PolicyError(f"{key}: the key must be a year like 2027")
        _expect(schedule, dict, key, "a table with holidays and workdays")
        try:
            years.append(
                YearSchedule(
                    int(year_key),
                    frozenset(_dates(schedule.get("holidays", []), f"{key}.holidays")),
                    frozenset(_dates(schedule.get("workdays", []), f"{key}.workdays")),
                )
            )
        except ValueError as error:
            raise PolicyError(str(error)) from None
    calendar = WorkingCalendar(
        kind=kind,
        tz=tz,
        day_start=day_start,
        day_end=day_end,
        extra_holidays=frozenset(_dates(cal.get("extra_holidays", []), "calendar.extra_holidays")),
        extra_workdays=frozenset(_dates(cal.get("extra_workdays", []), "calendar.extra_workdays")),
        official_years=tuple(years),
    )

    tracks_data = _expect(data.get("tracks", {}), dict, "tracks", "a table")
    tracks: dict[Track, TrackPolicy] = {}
    for name in tracks_data:
        if name not in {t.value for t in Track}:
            raise PolicyError(
                f"tracks.{name}: unknown track; use {', '.join(t.value for t in Track)}"
            )
    for track in Track:
        entry = tracks_data.get(track.value)
        if entry is None:
            raise PolicyError(f"tracks.{track.value}: missing")
        key = f"tracks.{track.value}"
        _expect(entry, dict, key, "a table")
        tracks[track] = TrackPolicy(
            track=track,
            sign=_duration(entry.get("sign"), f"{key}.sign"),
            reply=_duration(entry.get("reply"), f"{key}.reply"),
            resolve=_duration(entry.get("resolve"), f"{key}.resolve"),
            review_before_publish=_expect(
                entry.get("review", False), bool, f"{key}.review", "true or false"
            ),
            around_the_clock=_expect(
                entry.get("around_the_clock", False),
                bool,
                f"{key}.around_the_clock",
                "true or false",
            ),
        )

    categories: dict[str, Named] = {}
    for index, entry in enumerate(_named_list(data, "categories")):
        code, name, names = _named(entry, f"categories[{index}]")
        if code in categories:
            raise PolicyError(f"categories[{index}].code: {code!r} appears twice")
        categories[code] = Named(code, name, names)
    districts: dict[str, Named] = {}
    for index, entry in enumerate(_named_list(data, "districts")):
        code, name, names = _named(entry, f"districts[{index}]")
        if code in districts:
            raise PolicyError(f"districts[{index}].code: {code!r} appears twice")
        districts[code] = Named(code, name, names)
    units: dict[str, UnitDef] = {}
    for index, entry in enumerate(_named_list(data, "units")):
        code, name, names = _named(entry, f"units[{index}]")
        if code in units:
            raise PolicyError(f"units[{index}].code: {code!r} appears twice")
        parent = entry.get("parent") or None
        units[code] = UnitDef(code, name, names, parent)
    for index, unit in enumerate(units.values()):
        if unit.parent is not None and unit.parent not in units:
            raise PolicyError(f"units[{index}].parent: unknown unit {unit.parent!r}")

    routing: list[RoutingRule] = []
    for index, entry in enumerate(_expect(data.get("routing", []), list, "routing", "a list")):
        key = f"routing[{index}]"
        _expect(entry, dict, key, "a table")
        unit = entry.get("unit")
        if unit not in units:
            raise PolicyError(f"{key}.unit: unknown unit {unit!r}")
        category = entry.get("category") or None
        district = entry.get("district") or None
        if category is not None and category not in categories:
            raise PolicyError(f"{key}.category: unknown category {category!r}")
        if district is not None and district not in districts:
            raise PolicyError(f"{key}.district: unknown district {district!r}")
        if category is None and district is None:
            raise PolicyError(f"{key}: name a category, a district or both")
        routing.append(RoutingRule(unit, category, district))

    chasing_data = _expect(data.get("chasing", {}), dict, "chasing", "a table")
    reminder_at = _expect(
        chasing_data.get("reminder_at", 0.75),
        (int, float),
        "chasing.reminder_at",
        "a fraction between 0 and 1",
    )
    if not 0 < reminder_at < 1:
        raise PolicyError("chasing.reminder_at: expected a fraction between 0 and 1")
    supervision_after = _expect(
        chasing_data.get("supervision_after_days", 2),
        (int, float),
        "chasing.supervision_after_days",
        "a number of working days",
    )
    leaders_after = _expect(
        chasing_data.get("leaders_after_days", 5),
        (int, float),
        "chasing.leaders_after_days",
        "a number of working days",
    )
    if not 0 <= supervision_after <= leaders_after:
        raise PolicyError(
            "chasing.leaders_after_days: must not be less than supervision_after_days"
        )
    max_returns = _expect(
        chasing_data.get("max_returns", 2), int, "chasing.max_returns", "a whole number"
    )
    if max_returns < 1:
        raise PolicyError("chasing.max_returns: must be at least 1")

    callback_data = _expect(data.get("callback", {}), dict, "callback", "a table")
    reminder_days = _expect(
        callback_data.get("reminder_after_days", 1),
        (int, float),
        "callback.reminder_after_days",
        "a number of days",
    )
    close_days = _expect(
        callback_data.get("close_after_days", 3),
        (int, float),
        "callback.close_after_days",
        "a number of days",
    )
    if not 0 < reminder_days < close_days:
        raise PolicyError(
            "callback.reminder_after_days: must be positive and below close_after_days"
        )
    max_rounds = _expect(
        callback_data.get("max_rounds", 2), int, "callback.max_rounds", "a whole number"
    )
    if max_rounds < 1:
        raise PolicyError("callback.max_rounds: must be at least 1")

    reports_data = _expect(data.get("reports", {}), dict, "reports", "a table")
    weights = _expect(
        reports_data.get("score_weights", dict(ReportPolicy().weights)),
        dict,
        "reports.score_weights",
        "a table",
    )
    for name, weight in weights.items():
        if name not in ("reply_rate", "on_time_rate", "satisfaction_rate"):
            raise PolicyError(f"reports.score_weights.{name}: unknown figure")
        _expect(weight, (int, float), f"reports.score_weights.{name}", "a number")
    weekday_names = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
    weekly_day = str(reports_data.get("weekly_day", "MON")).upper()
    if weekly_day not in weekday_names:
        raise PolicyError(f"reports.weekly_day: expected one of {', '.join(weekday_names)}")
    reports = ReportPolicy(
        weekly_weekday=weekday_names.index(weekly_day),
        weekly_time=_clock_time(
            reports_data.get("weekly_time", "09:00"), "reports.weekly_time"
        ).strftime("%H:%M"),
        daily_time=_clock_time(
            reports_data.get("daily_time", "08:30"), "reports.daily_time"
        ).strftime("%H:%M"),
        min_cases_for_ranking=_expect(
            reports_data.get("min_cases_for_ranking", 5),
            int,
            "reports.min_cases_for_ranking",
            "a whole number",
        ),
        quarterly_to_units=_expect(
            reports_data.get("quarterly_to_units", True),
            bool,
            "reports.quarterly_to_units",
            "true or false",
        ),
        weights={str(k): float(v) for k, v in weights.items()},
    )

    limits_data = _expect(data.get("limits", {}), dict, "limits", "a table")
    defaults = Limits()
    limit_values: dict[str, int] = {}
    for name in (
        "text_min",
        "text_max",
        "answer_max",
        "note_max",
        "attachments_max",
        "filings_per_hour",
        "repeat_window_hours",
        "updates_burst",
        "updates_per_minute",
    ):
        value = _expect(
            limits_data.get(name, getattr(defaults, name)), int, f"limits.{name}", "a whole number"
        )
        if value < 0:
            raise PolicyError(f"limits.{name}: must not be negative")
        limit_values[name] = value
    attachment_mb = _expect(
        limits_data.get("attachment_max_mb", 20),
        (int, float),
        "limits.attachment_max_mb",
        "a number of megabytes",
    )
    if limit_values["text_max"] > 4000:
        raise PolicyError("limits.text_max: at most 4000, so a case fits one Telegram message")

    extensions = _expect(data.get("extensions", {}), dict, "extensions", "a table")
    cap = _expect(
        extensions.get("cap_days", 15),
        (int, float),
        "extensions.cap_days",
        "a number of working days",
    )
    questions = _expect(data.get("questions", {}), dict, "questions", "a table")
    pause = _expect(
        questions.get("pause_resolve_clock", True),
        bool,
        "questions.pause_resolve_clock",
        "true or false",
    )

    known = {
        "city",
        "working_hours",
        "calendar",
        "tracks",
        "categories",
        "districts",
        "units",
        "routing",
        "chasing",
        "callback",
        "reports",
        "limits",
        "extensions",
        "questions",
    }
    for key in data:
        if key not in known:
            raise PolicyError(
                f"{key}: unknown section; known sections are {', '.join(sorted(known))}"
            )

    return Policy(
        city=city_name,
        case_prefix=prefix,
        calendar=calendar,
        tracks=tracks,
        categories=categories,
        districts=districts,
        units=units,
        routing=tuple(routing),
        chasing=ChasingPolicy(
            float(reminder_at), float(supervision_after), float(leaders_after), max_returns
        ),
        callback=CallbackPolicy(
            timedelta(days=reminder_days), timedelta(days=close_days), max_rounds
        ),
        reports=reports,
        limits=Limits(**limit_values, attachment_max_bytes=int(attachment_mb * 1024 * 1024)),
        extension_cap_days=float(cap),
        pause_resolve_while_asking=pause,
    )


def load_policy(path: Path | str) -> Policy:
    """Read and validate a policy file; PolicyError says which key is wrong and why."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PolicyError(f"{path}: cannot read the policy file ({error.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: the policy file must be UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{path}: not valid TOML ({error})") from None
    return parse_policy(data)
