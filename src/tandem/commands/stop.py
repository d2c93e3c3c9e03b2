"""``tandem stop``: ask a running loop to stop at its next check point (SPEC §3.5)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tandem.commands.common import quiet_host, sync_overrides
from tandem.session import Session


def stop(
    *,
    cwd: Path,
    reason: str,
    sync: bool,
    remote: str | None,
    branch: str | None,
    config_path: str | None,
    overrides: Mapping[str, Any],
) -> int:
    """Write ``exit: true`` and the reason into the state (and publish it with --sync-via-git)."""
    if sync:
        host = quiet_host(cwd, config_path, {**overrides, **sync_overrides(remote, branch)})
        with host.run_lock():
            Session.open(host).request_stop(reason)
    else:
        host = quiet_host(cwd, config_path, overrides, use_git=False)
        with host.locked():
            host.state_file.write(host.read_state().with_stop(reason), host.clock())
    print(f"tandem: stop requested ({reason}); the run stops at its next check point")
    return 0
