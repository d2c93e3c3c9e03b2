"""The environment git runs with: tandem's own calls, and the agents' (which run git too).

Inherited GIT_* variables are dropped for both (as pre-commit does): a run started from a
git hook or an editor's terminal inherits GIT_DIR, GIT_INDEX_FILE, GIT_WORK_TREE,
GIT_OBJECT_DIRECTORY, pathspec switches (GIT_LITERAL_PATHSPECS, GIT_ICASE_PATHSPECS) and
the like, which point git at another repository or index or change what a pathspec means.
"""

from __future__ import annotations

from collections.abc import Mapping

# Kept, because the user set them on purpose and none of them redirects git:
_REACH = ("GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_ASKPASS", "GIT_PROXY_COMMAND")
_ALLOW = ("GIT_ALLOW_PROTOCOL", "GIT_PROTOCOL_FROM_USER", "GIT_TERMINAL_PROMPT")
_HTTP = ("GIT_HTTP_PROXY_AUTHMETHOD", "GIT_HTTP_USER_AGENT", "GIT_SSL_NO_VERIFY")
_TLS = ("GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "GIT_SSL_CERT", "GIT_SSL_KEY")
_CONFIG = ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_COUNT")
_WHO = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")
_KEPT_GIT_VARS = frozenset((*_REACH, *_ALLOW, *_HTTP, *_TLS, *_CONFIG, *_WHO, "GIT_EXEC_PATH"))
_KEPT_GIT_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")


def agent_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment agents inherit: the user's, minus the GIT_* that redirect git.

    An agent runs git in the same work tree as tandem, so the variables that would point
    it at another repository or index are dropped for it too. Its locale and everything
    else are the user's (tandem's own calls add ``LC_ALL=C``; agents do not get that).
    """
    return {
        key: value
        for key, value in env.items()
        if not key.startswith("GIT_") or key in _KEPT_GIT_VARS or key.startswith(_KEPT_GIT_PREFIXES)
    }


def tandem_env(env: Mapping[str, str]) -> dict[str, str]:
    """What tandem's own git calls run with: ``agent_env`` in English, never prompting,
    taking no optional lock.

    Messages are matched in English; nothing may wait for a password on a terminal. A
    plain ``git status`` rewrites the index through ``index.lock`` to refresh its stat
    data; tandem's does not, so it never makes an agent's git meet that lock (and saves a
    file's creation per turn). The commit that follows refreshes the index anyway.
    """
    return {
        **agent_env(env),
        "LC_ALL": "C",
        "LANGUAGE": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
    }
