"""The per-person token bucket behind the flood gate (handlers/common.throttle)."""

from __future__ import annotations

from bot.throttle import Throttle


class Seconds:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_admitted_then_refused_until_the_allowance_refills():
    seconds = Seconds()
    gate = Throttle(clock=seconds)
    admitted = [gate.admit(1, burst=5, per_minute=60) for _ in range(8)]
    assert admitted == [True] * 5 + [False] * 3
    seconds.now += 2  # two tokens back at one a second
    assert [gate.admit(1, burst=5, per_minute=60) for _ in range(3)] == [True, True, False]


def test_one_person_flooding_leaves_the_others_allowance_alone():
    gate = Throttle(clock=Seconds())
    for _ in range(50):
        gate.admit(1, burst=5, per_minute=60)
    assert all(gate.admit(2, burst=5, per_minute=60) for _ in range(5))


def test_the_notice_is_due_once_per_flood():
    seconds = Seconds()
    gate = Throttle(clock=seconds)
    for _ in range(6):
        gate.admit(1, burst=5, per_minute=60)
    assert [gate.first_refusal(1) for _ in range(3)] == [True, False, False]
    seconds.now += 10
    assert gate.admit(1, burst=5, per_minute=60)
    for _ in range(10):
        gate.admit(1, burst=5, per_minute=60)
    assert gate.first_refusal(1)


def test_a_clock_going_backwards_gives_nothing_back():
    seconds = Seconds()
    seconds.now = 100
    gate = Throttle(clock=seconds)
    for _ in range(5):
        gate.admit(1, burst=5, per_minute=60)
    seconds.now = 0
    assert not gate.admit(1, burst=5, per_minute=60)


def test_many_people_are_forgotten_once_their_allowance_is_full():
    seconds = Seconds()
    gate = Throttle(clock=seconds)
    gate.PRUNE_AT = 100
    for uid in range(100):
        gate.admit(uid, burst=5, per_minute=60)
    seconds.now += 60
    gate.admit(1000, burst=5, per_minute=60)
    assert len(gate._buckets) == 1


def test_a_zero_burst_switches_the_gate_off():
    gate = Throttle(clock=Seconds())
    assert all(gate.admit(1, burst=0, per_minute=0) for _ in range(1000))
