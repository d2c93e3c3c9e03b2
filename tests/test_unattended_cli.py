"""Budgets and notifications through the real command line (SPEC §14.4, §16): real
processes, real git, a bare remote shared by two clones, the fake agent on PATH."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import make_host, make_pair, remote_file, start_tandem, tandem

SYNC = ("--sync-via-git", "--poll-interval", "0.3")


def test_max_turns_stops_both_machines_with_totals_that_include_the_other_ones_turns(
    tmp_path: Path,
) -> None:
    pair = make_pair(tmp_path, "limits:\n  max_turns: 3\n")
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    procs = {
        name: start_tandem(
            host.root,
            "supervisor" if name == "galph" else "loop",
            *SYNC,
            "--iterations",
            "5",
            env=host.env(),
            log=tmp_path / f"{name}.out",
        )
        for name, host in (("galph", galph), ("ralph", ralph))
    }
    codes = {name: proc.wait(timeout=90) for name, proc in procs.items()}
    shown = {name: (tmp_path / f"{name}.out").read_text() for name in procs}
    assert codes == {"galph": 0, "ralph": 0}, shown
    # galph 1, ralph 1, galph 2: the third turn reaches the budget on galph's machine, and
    # ralph, which ran one of the three, stops at its next check point
    assert [c["actor"] for c in galph.calls()] == ["galph", "galph"]
    assert [c["actor"] for c in ralph.calls()] == ["ralph"]
    for name in procs:
        assert "stopping: budget reached: 3 turns run of limits.max_turns 3" in shown[name]
    state = json.loads(remote_file(pair.remote, "sync/state.json"))
    assert state["spent"]["turns"] == 3
    assert (state["expected_actor"], state["status"]) == ("ralph", "waiting-ralph")


def test_the_max_turns_flag_beats_the_config_and_a_failing_notifier_fails_nothing(
    tmp_path: Path,
) -> None:
    listener = tmp_path / "listen.py"
    got = tmp_path / "got.jsonl"
    listener.write_text(
        f"import sys\nopen({str(got)!r}, 'a').write(sys.stdin.read())\n"
        "print('notifier broke', file=sys.stderr)\nsys.exit(3)\n"
    )
    notify = f"notify:\n  command: [{sys.executable}, {listener}]\nlimits:\n  max_turns: 9\n"
    host = make_host(tmp_path, notify)
    run = tandem(host.root, "run", "--iterations", "3", "--max-turns", "2", env=host.env())
    assert run.code == 0, run.err
    assert "stopping: budget reached: 2 turns run of limits.max_turns 2" in run.out + run.err
    assert "notify.command exited with 3 on the budget event: notifier broke" in run.err
    sent = [json.loads(line) for line in got.read_text().splitlines()]
    assert [e["event"] for e in sent] == ["budget", "stop"]
    assert sent[1]["kind"] == "budget"
    assert sent[1]["spent"]["turns"] == 2
    again = tandem(host.root, "run", "--max-turns", "-1", env=host.env())
    assert again.code == 2
    assert again.err.startswith("tandem: error: ")
    assert "--max-turns" in again.err


def test_a_completed_run_notifies_done(tmp_path: Path) -> None:
    got = tmp_path / "got.jsonl"
    listener = tmp_path / "listen.py"
    listener.write_text(f"import sys\nopen({str(got)!r}, 'a').write(sys.stdin.read())\n")
    host = make_host(tmp_path, f"notify:\n  command: [{sys.executable}, {listener}]\n")
    run = tandem(host.root, "run", "--iterations", "1", env=host.env())
    assert run.code == 0, run.err
    assert [json.loads(line)["event"] for line in got.read_text().splitlines()] == ["done"]


def test_init_writes_the_limits_and_a_commented_notify_example_that_loads(
    tmp_path: Path,
) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    assert tandem(root, "init").code == 0
    text = (root / "orchestration.yaml").read_text()
    assert "# notify:" in text
    assert "#   command: [python3, notify.py]" in text
    shown = tandem(root, "config")
    assert shown.code == 0, shown.err
    assert "limits.max_cost_usd: null" in shown.out
    uncommented = text.replace("# notify:", "notify:").replace("#   command:", "  command:")
    (root / "orchestration.yaml").write_text(uncommented)
    assert "notify.command: [python3, notify.py]" in tandem(root, "config").out
