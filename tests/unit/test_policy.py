"""The policy file: the shipped example loads, and every mistake names its key."""

from __future__ import annotations

import tomllib
from copy import deepcopy
from typing import Any

import pytest

from bot.config import EXAMPLE_POLICY, PolicyError, load_policy, parse_policy
from bot.domain.policy import Duration, Track


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE_POLICY.read_text(encoding="utf-8"))


def test_the_example_policy_describes_a_real_city():
    policy = load_policy(EXAMPLE_POLICY)
    assert len(policy.units) >= 12
    assert {"ZJJ", "JYJ", "STHJJ", "RSJ", "JTYSJ", "YBJ", "JJZD", "CGJ", "GDGS", "ZLSGS"} <= set(
        policy.units
    )
    assert policy.units["JJZD"].parent == "GAJ"
    assert policy.track(Track.ROUTINE).sign == Duration(1, "d")
    assert policy.track(Track.ROUTINE).resolve == Duration(7, "d")
    assert policy.track(Track.SPECIAL).sign == Duration(2, "h")
    assert policy.track(Track.COORDINATED).resolve == Duration(15, "d")
    assert policy.case_prefix == "CZ"
    assert policy.categories["water"].name_in("en") == "Water supply"
    assert policy.categories["water"].name_in("zh_Hant") == "供水"


def test_routing_suggests_the_most_specific_unit_first():
    policy = load_policy(EXAMPLE_POLICY)
    assert policy.suggest_units("city_management", "langya") == ["LYQ", "CGJ"]
    assert policy.suggest_units("water", "fengyang") == ["ZLSGS", "FYX"]
    assert policy.suggest_units("other", "dingyuan") == ["DYX"]


def broken(path: str, value: Any) -> dict[str, Any]:
    data = deepcopy(example())
    target = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is KeyError:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("tracks.routine.sign", "1 week", "tracks.routine.sign"),
        ("tracks.routine.sign", "0d", "tracks.routine.sign"),
        ("tracks.special", KeyError, "tracks.special: missing"),
        ("city.case_prefix", "cz-", "city.case_prefix"),
        ("city.timezone", "Mars/Olympus", "city.timezone"),
        ("working_hours.start", "18:00", "working_hours"),
        ("working_hours.end", "half past five", "working_hours.end"),
        ("calendar.kind", "lunar", "calendar.kind"),
        ("calendar.extra_holidays", ["2026-13-01"], "calendar.extra_holidays[0]"),
        ("chasing.reminder_at", 1.5, "chasing.reminder_at"),
        ("chasing.max_returns", "two", "chasing.max_returns"),
        ("callback.reminder_after_days", 5, "callback.reminder_after_days"),
        ("reports.score_weights.luck", 1.0, "reports.score_weights.luck"),
        ("limits.text_max", 99999, "limits.text_max"),
        ("units.0.code", "住建", "units[0].code"),
        ("units.1.code", "ZJJ", "units[1].code"),
        ("units.7.parent", "NOPE", "units[7].parent"),
        ("routing.0.unit", "NOPE", "routing[0].unit"),
        ("routing.0.category", "weather", "routing[0].category"),
        ("categories.0.names", {"fr": "Logement"}, "categories[0].names.fr"),
        ("weather", {"rain": True}, "weather: unknown section"),
    ],
)
def test_a_broken_policy_names_the_key_and_what_is_wrong(path, value, message):
    with pytest.raises(PolicyError) as caught:
        parse_policy(broken(path, value))
    assert message in str(caught.value)


def test_a_policy_year_schedule_is_read_and_checked():
    data = example()
    data["calendar"]["years"] = {"2027": {"holidays": ["2027-10-01"], "workdays": ["2027-09-26"]}}
    policy = parse_policy(data)
    assert policy.calendar.schedule_source(2027) == "policy"
    data["calendar"]["years"] = {"2027": {"holidays": ["2028-01-01"]}}
    with pytest.raises(PolicyError, match=r"calendar\.years\.2027"):
        parse_policy(data)


def test_unreadable_and_invalid_files_say_so(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[city\nname = 1", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(bad)
