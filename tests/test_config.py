"""orchestration.yaml: discovery, strict validation, aliases, relative paths (SPEC §12)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.config import Config
from tandem.configfile import load
from tandem.errors import ConfigError, UsageError


def load_text(tmp_path: Path, text: str) -> Config:
    (tmp_path / "orchestration.yaml").write_text(text)
    return load(tmp_path, env={})


def test_no_config_means_defaults_with_the_given_root(tmp_path: Path) -> None:
    config = load(tmp_path, env={}, default_root=lambda cwd: cwd)
    assert config.source is None
    assert config.prompts_dir == tmp_path.resolve() / "prompts"
    assert config.agent.timeout_secs == 7200
    assert (config.lease_secs, config.sync.renew_secs) == (900, 300)
    assert (config.sync.git_timeout_secs, config.sync.max_offline_secs) == (120, 0)
    assert config.autocommit.ralph == ("**",)


def test_config_is_found_upward_and_paths_are_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "orchestration.yaml").write_text("prompts_dir: p\nlogs_dir: ../elsewhere\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    config = load(deep, env={})
    assert config.root == tmp_path.resolve()
    assert config.prompts_dir == tmp_path.resolve() / "p"
    assert config.logs_dir == tmp_path.parent.resolve() / "elsewhere"


def test_explicit_config_and_env_var(tmp_path: Path) -> None:
    other = tmp_path / "conf" / "x.yaml"
    other.parent.mkdir()
    other.write_text("main_prompt: work.md\n")
    assert load(tmp_path, explicit="conf/x.yaml", env={}).main_prompt == "work.md"
    assert load(tmp_path, env={"TANDEM_CONFIG": str(other)}).main_prompt == "work.md"
    with pytest.raises(ConfigError, match=r"--config names nope\.yaml, which does not exist"):
        load(tmp_path, explicit="nope.yaml", env={})


def test_unknown_key_has_a_did_you_mean_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "router:\n  enabeld: true\n")
    assert "unknown key 'router.enabeld' (did you mean 'router.enabled'?)" in str(caught.value)


def test_quoted_boolean_is_not_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, 'router:\n  enabled: "false"\n')
    message = str(caught.value)
    assert "router.enabled: must be true or false" in message
    assert "(a quoted string)" in message


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "router:\n  enabled: [true\n")
    assert "orchestration.yaml is not valid YAML at line" in str(caught.value)


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "agent:\n  timeout_secs: -1\n  default: 3\nsync:\n  remot: x\n")
    message = str(caught.value)
    assert "agent.timeout_secs: must be a number ≥ 0" in message
    assert "agent.default: must be a non-empty string" in message
    assert "unknown key 'sync.remot'" in message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("- a\n- b\n", "must be a mapping of keys"),
        ("router: 3\n", "router: must be a mapping"),
        ("router:\n  mode: sideways\n", "router.mode: must be one of"),
        ("agent:\n  commands:\n    mine: python3 x.py\n", "mine: must be a list of strings"),
        ("agent:\n  commands:\n    mine: []\n", "must be a non-empty list"),
        ("agent:\n  roles:\n    boss: claude\n", "'boss' is not an actor"),
        ("router:\n  review_every_n: 1.5\n", "must be an integer ≥ 0"),
        ("sync:\n  poll_interval: 0\n", "must be a number > 0"),
        ("autocommit:\n  galph: input.md\n", "must be a list of strings, not the string"),
    ],
)
def test_wrong_types_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        load_text(tmp_path, text)
    assert needle in str(caught.value)


def test_flat_keys_of_the_existing_system_are_aliases(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        "router_enabled: true\nrouter_mode: only\nrouter_prompt: router.md\n"
        "router_review_every_n: 3\ndoc_whitelist: [a.md, b.md]\n",
    )
    router = config.router
    assert (router.enabled, router.mode, router.prompt) == (True, "router_only", "router.md")
    assert (router.review_every_n, router.allowlist) == (3, ())
    assert config.autocommit.galph == ("a.md", "b.md")  # the supervisor's autocommit whitelist


def test_a_section_with_every_key_commented_out_is_empty(tmp_path: Path) -> None:
    config = load_text(tmp_path, "router:\n  # enabled: true\nagent:\nworkflow:\n")
    assert (config.router.enabled, config.agent.default, config.workflow.name) == (
        False,
        "claude",
        "standard",
    )


def test_alias_and_key_together_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"both router_mode and router\.mode are set"):
        load_text(tmp_path, "router_mode: first\nrouter:\n  mode: only\n")


def test_actor_aliases_in_role_maps(tmp_path: Path) -> None:
    config = load_text(tmp_path, "agent:\n  roles: {supervisor: codex, loop: claude}\n")
    assert dict(config.agent.roles) == {"galph": "codex", "ralph": "claude"}


def test_flags_beat_the_config_and_bad_flags_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "orchestration.yaml").write_text("router:\n  mode: first\n  enabled: false\n")
    config = load(tmp_path, env={}, overrides={"router.mode": "only"})
    assert (config.router.mode, config.router.enabled) == ("router_only", False)
    with pytest.raises(UsageError, match=r"router\.mode: must be one of"):
        load(tmp_path, env={}, overrides={"router.mode": "sideways"})


def test_the_lease_is_independent_of_the_agent_timeout(tmp_path: Path) -> None:
    assert load_text(tmp_path, "agent:\n  timeout_secs: 60\n").lease_secs == 900
    config = load_text(tmp_path, "sync:\n  lease_secs: 30\n")
    assert (config.lease_secs, config.sync.renew_secs) == (30, 10)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("sync:\n  lease_secs: 30\n  lease_renew_secs: 20\n", "at least twice"),
        ("sync:\n  lease_renew_secs: 600\n", "sync.lease_secs (900) must be at least twice"),
        ("sync:\n  git_timeout_secs: -1\n", "sync.git_timeout_secs: must be a number ≥ 1"),
        ("sync:\n  git_timeout_secs: 86400\n", "sync.git_timeout_secs: must be a number from"),
        ("sync:\n  max_offline_secs: -5\n", "sync.max_offline_secs: must be a number ≥ 0"),
    ],
)
def test_bad_lease_and_network_bounds_are_config_errors(
    tmp_path: Path, text: str, needle: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_text(tmp_path, text)


def test_duplicate_keys_are_an_error_not_a_silent_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, "agent:\n  default: codex\nrouter: {}\nagent:\n  timeout_secs: 5\n")
    message = str(caught.value)
    assert "duplicate key 'agent' at line 4" in message
    with pytest.raises(ConfigError, match="duplicate key 'default'"):
        load_text(tmp_path, "agent:\n  default: codex\n  default: claude\n")


@given(st.text(max_size=200))
def test_any_yaml_text_gives_a_config_or_a_config_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "orchestration.yaml").write_text(text)
        with contextlib.suppress(ConfigError):
            load(Path(folder), env={})
