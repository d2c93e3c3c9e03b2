"""On start, finish what a killed run left between its state write and its commit (SPEC
§13.1 rule 1).

Recording a turn writes the state file, then commits it with the turn's files. A run killed
(or a commit refused) in between leaves a state on disk that is not in HEAD. This module
decides, once, at the start of every mode and of ``stamp``:

- temp files of an interrupted atomic write (``.state.json.*.tmp``) are deleted: they hold
  no record (the rename never happened), and are never committed or counted as dirty;
- a state on disk that records one finished turn on top of HEAD's state is **completed**:
  committed now, with that turn's stamp subject and the files the actor may commit, so the
  turn is stamped exactly once and never swept into the next actor's commit;
- in sync mode, any other uncommitted change of tandem's own fields (a claim written but
  never committed) is **rolled back** to HEAD's, keeping a stop request or keys a human or
  an agent added, which the stop check and the sync then honour and publish;
- in combined and async mode a written but uncommitted ``running-<actor>`` is the normal
  state during a turn: the lease check of the next start takes it over (SPEC §3.4);
- a git operation in progress, or an ``index.lock`` left by a killed git command, stops
  the start with the command that ends it (only the user can know that no git command
  of theirs is running).
"""

from __future__ import annotations

import contextlib

from tandem.autocommit import selection_for
from tandem.errors import GitError
from tandem.files import atomic_write, temp_files
from tandem.host import Host
from tandem.state import Actor, State, merge
from tandem.statefile import parse
from tandem.subjects import turn_subject
from tandem.turns import commit_turn


def recover(host: Host, *, sync: bool) -> None:
    """Clean interrupted writes; complete or roll back an uncommitted state write."""
    for leftover in temp_files(host.state_file.path):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
        host.console.warn(f"removed {host.config.relative(leftover)} (an interrupted write)")
        host.log.event("recover_temp", path=host.config.relative(leftover))
    refuse_busy_repo(host)
    if host.repo is None or not host.state_file.exists():
        return
    committed = host.repo.show("HEAD", host.state_path)
    if committed == host.state_file.path.read_bytes():
        return
    local = host.read_state()
    before = State() if committed is None else parse(committed, f"HEAD:{host.state_path}")
    finished = local.finished_turn(before)
    if finished is not None:
        _complete(host, local, *finished)
    elif sync and committed is not None:
        _roll_back(host, local, before, committed)


def refuse_busy_repo(host: Host) -> None:
    """Nothing starts over a git operation in progress or a stale ``index.lock``: a commit
    then would fail, or land in the middle of someone's merge."""
    if host.repo is None or host.git_dir is None:
        return
    busy = host.repo.operation_in_progress(host.git_dir)
    if busy:
        raise GitError(
            f"a {busy} is in progress in {host.repo.root}",
            f"finish it (git {busy} --continue) or abort it (git {busy} --abort), then restart",
        )
    lock = host.git_dir / "index.lock"
    if lock.exists():
        raise GitError(
            f"{lock} exists: a git command was killed while it held the index lock",
            f"if no git command is running in {host.config.root}, delete it (rm {lock}) "
            "and restart",
        )


def _complete(host: Host, local: State, actor: Actor, ok: bool) -> None:
    """Commit a finish that was written but not committed, as the turn would have."""
    assert host.repo is not None
    selection = selection_for(host, actor, host.repo.status().dirty)
    prompt = local.failure.prompt if local.failure is not None else local.last_prompt
    commit_turn(host, local, selection, turn_subject(actor, ok, local, prompt), None)
    host.console.warn(f"recorded {actor}'s finished turn that an interrupted run did not commit")
    host.log.event("recover_finish", actor=actor, iteration=local.iteration, ok=ok)


def _roll_back(host: Host, local: State, committed: State, text: bytes) -> None:
    """Put HEAD's protocol fields back; keep the stop request and keys added by hand (and
    a stop request HEAD holds, whose honouring the killed run had not committed)."""
    merged = merge(committed, local)
    if merged.protocol_fields() == local.protocol_fields() and merged.exit == local.exit:
        return
    if merged == committed:
        atomic_write(host.state_file.path, text)
    else:
        host.state_file.write(merged)
    host.console.warn(
        f"discarded an uncommitted write of {host.state_path} left by an interrupted run "
        f"(it said {local.status} at iteration {local.iteration})"
    )
    host.log.event("recover_rollback", status=local.status, iteration=local.iteration)
