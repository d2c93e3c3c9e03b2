"""Pause, retry and budget policy (SPEC §14), with a fixed clock and a controlled random."""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.limits import (
    BACKOFF_MAX_SECS,
    JITTER_MAX_SECS,
    Budget,
    GiveUp,
    Pause,
    PauseKind,
    Spent,
    peer_line,
    plan_pause,
    retry_delay,
    retry_line,
    run_tokens,
)

NOW = datetime(2026, 12, 1, 17, 40, 30, tzinfo=timezone.utc).timestamp()
RESET = datetime(2026, 12, 1, 20, 40, tzinfo=timezone.utc).timestamp()
YEAR = 365 * 86400.0


class Low(random.Random):
    """Every draw is the lowest the range allows."""

    def random(self) -> float:
        return 0.0


class High(random.Random):
    """Every draw is (just about) the highest the range allows."""

    def random(self) -> float:
        return 1.0 - 2**-53


def seeded(seed: int) -> random.Random:
    """A seeded generator, as the loop passes one for jitter."""
    return random.Random(seed)  # noqa: S311  # jitter, not secrets


def pause(kind: PauseKind = "usage_limit", **kwargs: Any) -> Pause:
    """``plan_pause`` at NOW (claude, lowest jitter unless given); must be a Pause."""
    planned = plan_pause(kind, **{"agent": "claude", "now": NOW, "rng": Low(), **kwargs})
    assert isinstance(planned, Pause), planned
    return planned


def give_up(**kwargs: Any) -> GiveUp:
    """``plan_pause`` of a usage limit at NOW that must give up."""
    planned = plan_pause("usage_limit", **{"agent": "claude", "now": NOW, "rng": Low(), **kwargs})
    assert isinstance(planned, GiveUp), planned
    return planned


# -- pause -------------------------------------------------------------------------------


def test_a_usage_limit_pauses_until_its_reset_and_says_so() -> None:
    planned = pause(reset_at=RESET, detail="five_hour")
    assert (planned.until, planned.kind, planned.backoff) == (RESET, "usage_limit", False)
    assert planned.console_line(NOW) == (
        "paused: claude usage limit (five_hour) until 20:40Z (in 2h59m); the turn reruns then"
    )
    assert peer_line("galph", planned.kind, planned.until, NOW) == (
        "galph paused until 20:40Z (usage limit)"
    )


def test_the_jitter_after_a_reset_is_at_most_a_minute() -> None:
    planned = pause(reset_at=RESET, rng=High())
    assert RESET + JITTER_MAX_SECS - 0.01 < planned.until <= RESET + JITTER_MAX_SECS


def test_a_reset_a_few_seconds_ahead_is_not_stretched_to_a_minute() -> None:
    planned = pause(reset_at=NOW + 3, rng=High())
    assert NOW + 3 < planned.until <= NOW + 3.3


def test_the_heartbeat_line_counts_down() -> None:
    planned = pause(reset_at=RESET)
    assert "(in 1m00s)" in planned.console_line(RESET - 60)
    assert "(in 0.0s)" in planned.console_line(RESET + 5)


def test_a_reset_on_another_day_shows_the_date() -> None:
    tomorrow = RESET + 86400
    planned = pause(reset_at=tomorrow, max_pause_secs=2 * 86400)
    assert planned.console_line(NOW).startswith(
        "paused: claude usage limit until 2026-12-02 20:40Z (in 1d02h);"
    )


def test_a_rate_limit_waits_its_retry_after() -> None:
    planned = pause(kind="rate_limit", retry_after=5, agent="codex")
    assert (planned.until, planned.backoff) == (NOW + 5, False)
    assert planned.console_line(NOW).startswith("paused: codex rate limit until 17:40Z (in 5.0s)")


def test_a_reset_given_as_a_numeric_string_is_used() -> None:
    assert pause(reset_at=f" {RESET:.0f} ").until == RESET


def test_without_a_reset_time_waits_back_off_from_a_minute_to_half_an_hour() -> None:
    waits = [pause(waits=n).until - NOW for n in range(8)]
    assert waits == [60, 120, 240, 480, 960, 1800, 1800, 1800]
    assert all(pause(waits=n).backoff for n in range(3))


@pytest.mark.parametrize(
    "reset_at",
    [NOW - 3600, NOW, "soon", "", "8:40pm", math.nan, math.inf, -math.inf, True, [RESET], {}],
    ids=["past", "now", "word", "empty", "clock", "nan", "inf", "-inf", "bool", "list", "dict"],
)
def test_a_reset_time_that_makes_no_sense_backs_off_instead(reset_at: object) -> None:
    planned = pause(reset_at=reset_at, retry_after="x")
    assert (planned.until, planned.backoff) == (NOW + 60, True)


@pytest.mark.parametrize("reset_at", [NOW + 2 * YEAR, NOW + 1e12, 1e300])
def test_a_reset_years_ahead_fails_the_turn_at_once(reset_at: float) -> None:
    stopped = give_up(reset_at=reset_at)
    assert stopped.kind == "usage_limit"
    assert stopped.reason.startswith("claude usage limit: it resets at ")
    assert stopped.reason.endswith("later than limits.max_pause_secs (86400) allows")


def test_a_weekly_reset_is_waited_for_when_max_pause_allows_it() -> None:
    week = NOW + 7 * 86400
    assert give_up(reset_at=week).kind == "usage_limit"
    assert pause(reset_at=week, max_pause_secs=8 * 86400).until == week


def test_past_max_pause_the_turn_fails_with_its_kind() -> None:
    stopped = give_up(paused_secs=86400, reset_at=NOW + 60)
    assert stopped.reason == (
        "claude usage limit: paused 1d00h in total, the most limits.max_pause_secs (86400) allows"
    )


def test_the_last_backoff_wait_ends_at_max_pause() -> None:
    assert pause(paused_secs=86400 - 10, waits=9).until == NOW + 10
    assert give_up(paused_secs=86400 - 0.5).kind == "usage_limit"


def test_a_reset_a_moment_ahead_still_waits_a_second() -> None:
    assert pause(reset_at=NOW + 0.001).until == NOW + 1


def test_a_reset_later_than_the_pause_left_gives_up() -> None:
    assert give_up(paused_secs=86400 - 100, reset_at=NOW + 200).kind == "usage_limit"


@given(
    now=st.floats(min_value=0, max_value=4e9),
    reset_at=st.one_of(
        st.none(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12)
    ),
    retry_after=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    paused_secs=st.floats(min_value=0, max_value=1e6),
    waits=st.integers(min_value=0, max_value=10**6),
    max_pause_secs=st.floats(min_value=0, max_value=1e7),
    seed=st.integers(),
)
def test_every_pause_ends_in_the_future_within_max_pause(
    now: float,
    reset_at: object,
    retry_after: object,
    paused_secs: float,
    waits: int,
    max_pause_secs: float,
    seed: int,
) -> None:
    planned = plan_pause(
        "rate_limit",
        agent="gemini",
        now=now,
        rng=seeded(seed),
        paused_secs=paused_secs,
        waits=waits,
        reset_at=reset_at,
        retry_after=retry_after,
        max_pause_secs=max_pause_secs,
    )
    if isinstance(planned, GiveUp):
        assert planned.kind == "rate_limit"
        assert "limits.max_pause_secs" in planned.reason
        return
    assert now < planned.until <= now + (max_pause_secs - paused_secs) + 1e-6
    if planned.backoff:
        assert planned.until - now <= BACKOFF_MAX_SECS + JITTER_MAX_SECS
    assert planned.console_line(now).startswith("paused: gemini rate limit until ")


@given(
    max_pause_secs=st.floats(min_value=1, max_value=1e5),
    # A reset that stays a fixed time ahead at every rerun (at least 30 s: shorter ones
    # make the simulation long, not the policy wrong), or one that is always past.
    reset_in=st.one_of(
        st.none(), st.floats(min_value=30, max_value=1e5), st.floats(min_value=-1e5, max_value=0)
    ),
    seed=st.integers(),
)
def test_a_limit_that_never_lifts_ends_the_turn_after_max_pause(
    max_pause_secs: float, reset_in: float | None, seed: int
) -> None:
    now, paused, waits, rng = NOW, 0.0, 0, seeded(seed)
    while True:
        reset_at = None if reset_in is None else now + reset_in
        planned = plan_pause(
            "usage_limit",
            agent="claude",
            now=now,
            rng=rng,
            paused_secs=paused,
            waits=waits,
            reset_at=reset_at,
            max_pause_secs=max_pause_secs,
        )
        if isinstance(planned, GiveUp):
            break
        paused, now, waits = paused + planned.until - now, planned.until, waits + 1
        assert waits <= max_pause_secs + 1, "pauses shrink to nothing"
    assert paused <= max_pause_secs + 1e-6


# -- retries -----------------------------------------------------------------------------


def test_transient_failures_retry_after_30_60_120_seconds() -> None:
    assert [retry_delay("transient", n, 3, Low()) for n in range(4)] == [24.0, 48.0, 96.0, None]
    high = [retry_delay("transient", n, 3, High()) for n in range(3)]
    assert high == pytest.approx([36.0, 72.0, 144.0])


@pytest.mark.parametrize(
    "kind", ["auth", "timeout", "agent", "interrupted", "usage_limit", "rate_limit"]
)
def test_other_kinds_are_never_retried(kind: str) -> None:
    assert retry_delay(kind, 0, 5, Low()) is None


def test_no_retries_by_default() -> None:
    assert retry_delay("transient", 0, 0, Low()) is None


def test_a_retry_line_names_the_attempt_and_the_reason() -> None:
    line = retry_line(0, 2, 31.4, "transient: HTTP 503")
    assert line == "retrying in 32s (1/2): transient: HTTP 503"


@given(done=st.integers(min_value=0, max_value=10**6), seed=st.integers())
def test_retry_delays_stay_within_twenty_percent_of_the_schedule(done: int, seed: int) -> None:
    delay = retry_delay("transient", done, done + 1, seeded(seed))
    assert delay is not None
    base = min(30.0 * 2 ** min(done, 16), 1800.0)
    assert 0.8 * base <= delay <= 1.2 * base


# -- budgets -----------------------------------------------------------------------------


def test_a_cost_budget_stops_with_the_message() -> None:
    spent = Spent(cost_usd=50.12, tokens=10, turns=7)
    assert Budget(max_cost_usd=50.0).reached(spent) == (
        "budget reached: $50.12 spent of limits.max_cost_usd $50.00"
    )
    assert Budget(max_cost_usd=50.13).reached(spent) is None


def test_token_and_turn_budgets() -> None:
    spent = Spent(cost_usd=0.0, tokens=1_204_330, turns=10)
    assert Budget(max_tokens=1_000_000).reached(spent) == (
        "budget reached: 1,204,330 tokens used of limits.max_tokens 1,000,000"
    )
    assert Budget(max_turns=10).reached(spent) == (
        "budget reached: 10 turns run of limits.max_turns 10"
    )
    assert Budget(max_turns=11, max_tokens=2_000_000).reached(spent) is None
    assert Budget().reached(Spent(1e9, 10**12, 10**6)) is None


def test_receipts_add_up_and_router_runs_count_no_turn() -> None:
    spent = Spent().add(0.25, 1500).add(None, 300).add(0.05, 40, turns=0)
    assert math.isclose(spent.cost_usd, 0.30)
    assert (spent.tokens, spent.turns) == (1840, 2)
    assert Spent.from_json(spent.to_json()) == spent


def test_unusable_numbers_add_nothing() -> None:
    assert Spent().add(math.nan, -5) == Spent(0.0, 0, 1)
    assert Spent().add(-1.0, 0, turns=0) == Spent()


def test_stored_totals_that_make_no_sense_read_as_zero() -> None:
    assert Spent.from_json(None) == Spent()
    assert Spent.from_json({"cost_usd": "x", "tokens": True, "turns": 2.5}) == Spent()
    assert Spent.from_json({"cost_usd": "1.5", "tokens": 7, "turns": 3}) == Spent(1.5, 7, 3)


@pytest.mark.parametrize(
    ("usage", "tokens"),
    [
        # claude: cache reads and writes are apart from input_tokens
        (
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
            },
            135,
        ),
        # codex: cached_input_tokens are part of input_tokens
        ({"input_tokens": 20, "cached_input_tokens": 8, "output_tokens": 10}, 30),
        # gemini: a total is given
        ({"input_tokens": 30, "output_tokens": 15, "cached": 3, "total_tokens": 45}, 45),
        # opencode: reasoning is apart from output
        ({"input_tokens": 20, "output_tokens": 10, "reasoning_tokens": 4}, 34),
        ({}, 0),
    ],
    ids=["claude", "codex", "gemini", "opencode", "none"],
)
def test_run_tokens_per_agent(usage: dict[str, int], tokens: int) -> None:
    assert run_tokens(usage) == tokens


@given(
    limit=st.floats(min_value=0, max_value=1e6),
    costs=st.lists(st.floats(min_value=0, max_value=1e3), max_size=50),
)
def test_a_cost_budget_is_reached_exactly_when_the_total_gets_there(
    limit: float, costs: list[float]
) -> None:
    spent = Spent()
    for cost in costs:
        spent = spent.add(cost, 0)
    message = Budget(max_cost_usd=limit).reached(spent)
    assert (message is not None) == (spent.cost_usd >= limit)
