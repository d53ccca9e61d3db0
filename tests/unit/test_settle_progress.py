"""Waiting for the stack to settle gives up on a stuck stack, never on a slow one."""

from __future__ import annotations

import itertools
import threading

import pytest

from bankrun.runner.settle import StackStopped, until_settled


def test_a_stack_that_keeps_consuming_is_waited_for_past_the_stall_limit():
    calls = itertools.count()

    def probe() -> tuple[bool, float]:
        n = next(calls)
        return n >= 150, float(n)  # consuming all along (150 polls, > 3 s), then settled

    until_settled(probe, "a burst", stall_s=2)
    assert next(calls) == 151


def test_a_stack_that_consumes_nothing_is_given_up_on_naming_what_it_waited_for():
    with pytest.raises(TimeoutError, match="no progress for 0s waiting for a stuck step"):
        until_settled(lambda: (False, 7.0), "a stuck step", stall_s=0.2)


def test_an_unreachable_service_is_no_progress():
    with pytest.raises(TimeoutError):
        until_settled(lambda: (False, None), "a killed service", stall_s=0.2)


def test_a_wait_gives_up_at_once_when_the_stack_is_stopped():
    """A Ctrl-C'd run's settle wait, left in a worker thread, must not hold the exit."""
    stopping, polls = threading.Event(), itertools.count()

    def probe() -> tuple[bool, float]:
        if next(polls) == 3:
            stopping.set()
        return False, 1.0

    with pytest.raises(StackStopped, match="stopped while waiting for a step"):
        until_settled(probe, "a step", stall_s=300, stopping=stopping)
    assert next(polls) == 4
