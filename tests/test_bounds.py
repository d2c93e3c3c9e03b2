"""Bad input is bounded (SPEC §13.1 rule 7) and the crash handler never crashes (rule 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import assert_one_line_error, make_host, snapshot, tandem
from tandem import cli, error_handler
from tandem.configfile import load
from tandem.errors import ConfigError, UsageError


def load_text(tmp_path: Path, text: str) -> ConfigError:
    (tmp_path / "orchestration.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, env={})
    return caught.value


def test_a_huge_config_file_is_refused_before_parsing(tmp_path: Path) -> None:
    error = load_text(tmp_path, "# padding\n" * 200_000)
    assert "orchestration.yaml is larger than 1024 KiB" in str(error)


def test_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 9):
        refs = ", ".join([f"*{chr(96 + level)}"] * 9)
        lines.append(f"{chr(97 + level)}: &{chr(97 + level)} [{refs}]")
    error = load_text(tmp_path, "\n".join(lines) + "\n")
    assert "more than 32 aliases" in str(error)


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    error = load_text(tmp_path, "router: " + "[" * 500 + "]" * 500 + "\n")
    assert "nested more than 40 levels deep" in str(error)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "agent:\n  timeout_secs: .nan\n",
            "agent.timeout_secs: must be a number from 0 to 2.592e+06",
        ),
        ("agent:\n  timeout_secs: .inf\n", "agent.timeout_secs: must be a number from 0"),
        ("sync:\n  lease_secs: 2592001\n", "sync.lease_secs: must be a number from 0"),
        ("sync:\n  poll_interval: -.inf\n", "sync.poll_interval: must be a number"),
        ("router:\n  review_every_n: 1000000001\n", "must be at most 1000000000"),
        ("autocommit:\n  max_file_bytes: 99999999999999999999\n", "must be at most"),
    ],
)
def test_numbers_are_finite_and_in_range(tmp_path: Path, text: str, needle: str) -> None:
    assert needle in str(load_text(tmp_path, text))


def test_thirty_days_is_still_allowed(tmp_path: Path) -> None:
    (tmp_path / "orchestration.yaml").write_text("agent:\n  timeout_secs: 2592000\n")
    assert load(tmp_path, env={}).agent.timeout_secs == 2592000


def test_a_long_list_of_problems_is_one_bounded_line(tmp_path: Path) -> None:
    text = "".join(f"unknown_key_number_{n}: 1\n" for n in range(40))
    message = str(load_text(tmp_path, text))
    assert len(message) < 300
    count = int(message.split("; and ", 1)[1].split(maxsplit=1)[0])
    assert f"; and {count} more problems; fix orchestration.yaml" in message
    assert count + message.count("unknown key") == 40


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--iterations", "1000000001"],
            "--iterations must be from 1 to 1000000000, not 1000000001; see `tandem run --help`",
        ),
        (
            ["--agent-timeout", "nan"],
            "--agent-timeout must be 0 or more seconds, not nan; see `tandem run --help`",
        ),
        (
            ["--poll-interval", "inf"],
            "--poll-interval must be 0 or more seconds, not inf; see `tandem run --help`",
        ),
        (
            ["--agent-timeout", "2592001"],
            (
                "--agent-timeout: agent.timeout_secs: must be a number from 0 to 2.592e+06, not "
                "2592001.0; fix the flag or the environment variable"
            ),
        ),
        (
            ["--push", "--no-git"],
            (
                "--push cannot work with --no-git: --push publishes commits, and --no-git makes "
                "none; drop --no-git"
            ),
        ),
        (
            ["--push", "--commit-dry-run"],
            (
                "--push cannot work with --commit-dry-run: --push publishes commits, and "
                "--commit-dry-run makes none; drop --commit-dry-run"
            ),
        ),
        (
            ["--no-git", "--commit-dry-run"],
            (
                "--no-git cannot work with --commit-dry-run: --commit-dry-run shows commits, and "
                "--no-git makes none; drop --commit-dry-run"
            ),
        ),
        (
            ["--quiet", "--verbose"],
            "--quiet and --verbose disagree ('quiet' vs 'verbose'); give only one of them",
        ),
        (
            ["--use-router", "--no-router"],
            "--use-router and --no-router disagree (true vs false); give only one of them",
        ),
    ],
)
def test_bad_and_incompatible_flags_are_usage_errors_before_anything_runs(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    host = make_host(tmp_path)
    before = snapshot(host.root)
    result = tandem(host.root, "run", *args, env=host.env())
    assert result.code == 2, result.err
    assert_one_line_error(result.err, needle)
    assert snapshot(host.root) == before
    assert host.calls() == []


def test_a_logs_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    host = make_host(tmp_path, "logs_dir: logfile\n", files={"logfile": "not a folder\n"})
    before = snapshot(host.root)
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 1
    assert_one_line_error(
        result.err,
        "logs_dir logfile is not a folder; move that file away or set logs_dir elsewhere",
    )
    assert snapshot(host.root) == before


def test_a_logs_dir_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    host = make_host(tmp_path, "logs_dir: afile/logs\n", files={"afile": "a file\n"})
    before = snapshot(host.root)
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 1
    assert_one_line_error(
        result.err,
        "cannot create logs_dir afile/logs: Not a directory; set logs_dir to a writable folder",
    )
    assert snapshot(host.root) == before


def _explode(*_: object) -> int:
    raise RuntimeError("a bug\nsecond line of the message")


def test_the_crash_log_holds_versions_platform_and_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_dispatch", _explode)
    monkeypatch.setattr("sys.argv", ["tandem", "status", "--json"])
    assert cli.main(["status"]) == 3
    line = capsys.readouterr().err
    assert line.startswith("tandem: internal error (a bug): RuntimeError: a bug; details in ")
    assert line.count("\n") == 1
    text = next(tmp_path.glob("logs/tandem-crash-*.log")).read_text()
    for needle in (
        "tandem: ",
        "git: git version",
        "python: 3.",
        "platform: ",
        "command: tandem status --json",
    ):
        assert needle in text
    assert "RuntimeError: a bug" in text


def test_a_crash_log_that_cannot_be_written_still_prints_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def nowhere(_: Path) -> Path:
        raise OSError("disk full")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_dispatch", _explode)
    monkeypatch.setattr(error_handler, "_crash_log", nowhere)
    assert cli.main(["status"]) == 3
    err = capsys.readouterr().err
    assert err == (
        "tandem: internal error (a bug): RuntimeError: a bug; "
        "no crash log could be written (OSError)\n"
    )


def test_flag_layer_errors_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"router\.review_every_n: must be an integer"):
        load(tmp_path, env={}, overrides={"router.review_every_n": -1})


def test_a_long_error_keeps_its_fix_in_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tandem.errors import TandemError

    def long_error(*_: object) -> int:
        raise TandemError("x" * 5000, "do this")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_dispatch", long_error)
    assert cli.main(["status"]) == 1
    err = capsys.readouterr().err
    assert len(err) < 700
    assert err.endswith("x…; do this\n")
