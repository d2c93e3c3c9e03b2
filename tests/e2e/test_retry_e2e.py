"""Retries of transient failures with the real claude against the fake model server (SPEC
§14.3): a burst of HTTP 500s with ``agent.retries: 2`` recovers on the third attempt of the
same turn; a 401 (``auth``) is never retried. ``CLAUDE_CODE_MAX_RETRIES=0`` (fakes.servers)
turns claude's own retries off, so each attempt is one request and the fake server's
``times`` decides how many attempts fail."""

from __future__ import annotations

import pytest

from e2e.e2e_support import CLAUDE, WRITE_WORK, Lab, agent_requests
from fakes.record import HTTP_401
from helpers import git

TURN = [{"shell": WRITE_WORK}, {"text": "Done"}]
BURST = {"error": {"status": 500, "message": "boom"}, "times": 2}


@pytest.mark.e2e
def test_a_5xx_burst_with_two_retries_recovers_on_the_third_attempt(lab: Lab) -> None:
    setup = lab.setup(CLAUDE, [BURST, *TURN], retries=2, retry_delay_secs=0.5)
    run, _ = setup.tandem("run", "--iterations", "1")
    assert run.code == 0, run.out + run.err
    retries = setup.events("retry")
    assert [e["attempt"] for e in retries] == [2, 3]
    assert all(e["reason"].startswith("transient: ") for e in retries), retries
    assert all(0.4 <= e["delay_secs"] <= 1.2 for e in retries), retries  # 0.5 s, then 1 s
    assert (run.out + run.err).count("retrying in ") == 2
    # galph: two failed attempts, then a tool call and the answer; ralph: the same two
    assert len(agent_requests(setup.server)) == 2 + 2 + 2
    assert git(setup.root, "show", "HEAD~1:input.md") == "do step 1\n"
    ends = setup.events("turn_end")
    assert [(e["actor"], e["status"]) for e in ends] == [("galph", "ok"), ("ralph", "ok")]
    assert len(ends[0]["earlier_results"]) == 2  # the failed attempts' reports are kept
    receipt = git(setup.root, "log", "-1", "--format=%B", "HEAD~1")
    assert "Tandem-Result: ok" in receipt
    assert setup.state()["status"] == "complete"


@pytest.mark.e2e
def test_auth_is_never_retried(lab: Lab) -> None:
    setup = lab.setup(CLAUDE, [*HTTP_401, *TURN], retries=2, retry_delay_secs=0.5)
    run, _ = setup.tandem("run", "--iterations", "1")
    assert run.code == 1, run.out + run.err
    assert setup.events("retry") == []
    assert len(agent_requests(setup.server)) == 1
    [end] = setup.events("turn_end")
    assert (end["status"], end["kind"]) == ("failed", "auth")
    assert setup.state()["status"] == "failed"
