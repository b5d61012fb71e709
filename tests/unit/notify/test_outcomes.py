"""After an attempt: keypad 1 acknowledges; busy, no answer and a dead SMSC are retried with
a doubling wait while the step lasts, then given up so the chain moves on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notify.outcomes import Outcome, RetryPolicy, State, after_attempt

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=3, base_s=10)


def test_keypad_one_acknowledges_whatever_else_was_pressed() -> None:
    assert after_attempt(Outcome(State.ANSWERED, keypad=("2", "1")), 1, NOW, None, POLICY).state is State.ACKED


def test_a_busy_line_is_tried_again_after_a_doubling_wait() -> None:
    first = after_attempt(Outcome(State.BUSY), 1, NOW, None, POLICY)
    second = after_attempt(Outcome(State.BUSY), 2, NOW, None, POLICY)
    assert (first.state, first.retry_at) == (State.QUEUED, NOW + timedelta(seconds=10))
    assert second.retry_at == NOW + timedelta(seconds=20)


def test_the_last_attempt_gives_up_and_hands_over() -> None:
    last = after_attempt(Outcome(State.NO_ANSWER), 3, NOW, None, POLICY)
    assert last.state is State.NO_ANSWER and last.gave_up


def test_no_retry_is_planned_past_the_steps_deadline() -> None:
    late = after_attempt(Outcome(State.FAILED), 1, NOW, NOW + timedelta(seconds=5), POLICY)
    assert late.gave_up


def test_an_accepted_sms_is_done() -> None:
    done = after_attempt(Outcome(State.ACCEPTED, ref="1"), 1, NOW, None, POLICY)
    assert done.state is State.ACCEPTED and not done.gave_up
