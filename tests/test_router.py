"""Routing: the deterministic table (SPEC §4.1), the router prompt and validation (§4.3)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.errors import RoutingError
from tandem.router import (
    RouterContext,
    _check_relative,
    decide,
    deterministic,
    parse_answer,
    validate,
    validate_router_prompt,
)
from tandem.state import Actor, State


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    folder = tmp_path / "prompts"
    folder.mkdir()
    for name in ("supervisor.md", "main.md", "reviewer.md", "router.md", "plan.md"):
        (folder / name).write_text(f"# {name}\n")
    return folder


def ctx(prompts: Path, **changes: object) -> RouterContext:
    base: dict[str, object] = {"prompts_dir": prompts, "enabled": True, "review_every_n": 2}
    base.update(changes)
    return RouterContext(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("actor", "iteration", "last_prompt", "last_actor", "expected", "reason"),
    [
        ("galph", 1, None, None, "supervisor.md", "no review cadence hit"),
        ("galph", 2, None, None, "reviewer.md", "review cadence hit"),
        ("ralph", 1, None, None, "main.md", "no review cadence hit"),
        (
            "ralph",
            2,
            "reviewer.md",
            "galph",
            "main.md",
            "review cadence already ran on galph's turn",
        ),
        ("ralph", 2, "supervisor.md", "galph", "reviewer.md", "galph did not run the reviewer"),
        ("ralph", 2, "reviewer.md", "ralph", "reviewer.md", "galph did not run the reviewer"),
    ],
)
def test_router_deterministic(
    prompts: Path,
    actor: Actor,
    iteration: int,
    last_prompt: str | None,
    last_actor: Actor | None,
    expected: str,
    reason: str,
) -> None:
    """Every row of the table of SPEC §4.1, and the same answer every time."""
    state = State(iteration=iteration, last_prompt=last_prompt, last_prompt_actor=last_actor)
    first = deterministic(actor, state, ctx(prompts))
    assert first == deterministic(actor, state, ctx(prompts))
    assert first[0] == expected
    assert reason in first[1]


def test_cadence_example_of_the_spec(prompts: Path) -> None:
    """n=2: i1 supervisor/main, i2 reviewer/main, i3 supervisor/main, i4 reviewer/main."""
    seen = []
    state = State()
    for iteration in range(1, 5):
        for actor in ("galph", "ralph"):
            state = State(
                iteration=iteration,
                last_prompt=state.last_prompt,
                last_prompt_actor=state.last_prompt_actor,
            )
            prompt = decide(actor, state, ctx(prompts)).prompt
            seen.append(prompt)
            state = state.stamped(prompt, actor)
    assert seen == ["supervisor.md", "main.md", "reviewer.md", "main.md"] * 2


def test_router_disabled_ignores_cadence(prompts: Path) -> None:
    state = State(iteration=2)
    assert deterministic("galph", state, ctx(prompts, enabled=False))[0] == "supervisor.md"
    assert deterministic("ralph", state, ctx(prompts, enabled=False))[0] == "main.md"


# -- validation (SPEC §4.3) ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("notes.txt", "rule 1"),
        ("../x.md", "rule 3"),
        ("/etc/passwd.md", "rule 3"),
        ("plan.md", "rule 2"),
        ("missing.md", "rule 4"),
    ],
)
def test_each_rule_rejects_with_its_name(prompts: Path, name: str, rule: str) -> None:
    context = ctx(prompts, allowlist=("supervisor.md", "main.md", "reviewer.md", "missing.md"))
    with pytest.raises(RoutingError) as caught:
        validate(name, "galph", context)
    assert rule in str(caught.value)
    assert name in str(caught.value)


def test_no_suffix_gets_md(prompts: Path) -> None:
    assert validate("reviewer", "galph", ctx(prompts))[0] == "reviewer.md"


def test_symlink_out_of_prompts_dir_is_rejected(prompts: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.md"
    outside.write_text("x")
    (prompts / "link.md").symlink_to(outside)
    context = ctx(prompts, allowlist=("link.md",), actor_prompts={"galph": ("link.md",)})
    with pytest.raises(RoutingError, match="rule 3: it resolves outside prompts_dir"):
        validate("link.md", "galph", context)


def test_symlink_inside_prompts_dir_is_fine(prompts: Path) -> None:
    (prompts / "alias.md").symlink_to(prompts / "reviewer.md")
    context = ctx(prompts, allowlist=("alias.md",), actor_prompts={"galph": ("alias.md",)})
    assert validate("alias.md", "galph", context)[1] == prompts.resolve() / "reviewer.md"


def test_a_symlinked_subfolder_that_leaves_prompts_dir_is_rejected(
    prompts: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.md").write_text("x")
    (prompts / "sub").symlink_to(outside)
    context = ctx(prompts, allowlist=("sub/x.md",), actor_prompts={"galph": ("sub/x.md",)})
    with pytest.raises(RoutingError, match="rule 3: it resolves outside prompts_dir"):
        validate("sub/x.md", "galph", context)


@pytest.mark.parametrize(
    "name", ["reviewer.md", "sub/deep.md", "sub/alias.md", "./reviewer.md", "missing.md"]
)
def test_a_prompt_resolves_as_realpath_resolves_it(prompts: Path, name: str) -> None:
    (prompts / "sub").mkdir()
    (prompts / "sub" / "deep.md").write_text("x")
    (prompts / "sub" / "alias.md").symlink_to(prompts / "reviewer.md")
    context = ctx(prompts, allowlist=(name,), actor_prompts={"galph": (name,)})
    expected = os.path.realpath(os.path.join(os.path.realpath(prompts), name))
    if os.path.isfile(expected):
        assert str(validate(name, "galph", context)[1]) == expected
    else:
        with pytest.raises(RoutingError, match=f"rule 4: {expected} does not exist"):
            validate(name, "galph", context)


@given(st.lists(st.sampled_from(["a", "..", ".", "", "b.md", "..x", "/", "\\"]), max_size=5))
def test_rule_3_by_name_judges_as_pathlib_does(pieces: list[str]) -> None:
    name = "/".join(pieces)
    pure = PurePosixPath(name)
    leaves = pure.is_absolute() or ".." in pure.parts or "\\" in name
    try:
        _check_relative(name, RoutingError)
    except RoutingError:
        assert leaves
    else:
        assert not leaves


def test_a_folder_is_not_a_prompt(prompts: Path) -> None:
    (prompts / "dir.md").mkdir()
    with pytest.raises(RoutingError, match=r"rule 4: .* is not a regular file"):
        validate("dir.md", "galph", ctx(prompts, allowlist=("dir.md",)))


def test_actor_gating(prompts: Path) -> None:
    context = ctx(prompts)
    with pytest.raises(RoutingError, match="rule 5: galph may not run it"):
        validate("main.md", "galph", context)
    with pytest.raises(RoutingError, match="rule 5: ralph may not run it"):
        validate("supervisor.md", "ralph", context)
    assert validate("reviewer.md", "ralph", context)[0] == "reviewer.md"


def test_actor_prompts_extend_what_an_actor_may_run(prompts: Path) -> None:
    context = ctx(prompts, allowlist=("plan.md",), actor_prompts={"galph": ("plan.md",)})
    assert validate("plan.md", "galph", context)[0] == "plan.md"
    with pytest.raises(RoutingError, match="rule 5"):
        validate("plan.md", "ralph", context)


# -- router answers ----------------------------------------------------------------------------
def test_router_answer_quotes_the_answer_and_the_allowlist(prompts: Path) -> None:
    with pytest.raises(RoutingError) as caught:
        decide("galph", State(), ctx(prompts, router_prompt="router.md"), lambda: "notes.txt\n")
    message = str(caught.value)
    assert 'router answer: "notes.txt"' in message
    assert "allowlist: supervisor.md, main.md, reviewer.md" in message


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("", None), ("\n  \n", None), ("  reviewer.md  \n", "reviewer.md"), ("\n\nmain\n", "main")],
)
def test_parse_answer(answer: str, expected: str | None) -> None:
    assert parse_answer(answer) == expected


def test_multi_line_answer_is_an_error() -> None:
    with pytest.raises(RoutingError, match="2 non-empty lines"):
        parse_answer("I think\nreviewer.md")


def test_router_default_mode_replaces_the_deterministic_route(prompts: Path) -> None:
    decision = decide("galph", State(), ctx(prompts, router_prompt="router.md"), lambda: "reviewer")
    assert (decision.prompt, decision.source) == ("reviewer.md", "router")
    assert "replacing deterministic supervisor.md" in decision.reason


def test_empty_answer_falls_back_except_in_router_only(prompts: Path) -> None:
    for mode in ("router_default", "router_first"):
        decision = decide(
            "galph", State(), ctx(prompts, router_prompt="router.md", mode=mode), lambda: ""
        )
        assert (decision.prompt, decision.source) == ("supervisor.md", "deterministic")
    with pytest.raises(RoutingError, match="router_only needs one"):
        decide(
            "galph",
            State(),
            ctx(prompts, router_prompt="router.md", mode="router_only"),
            lambda: "",
        )


def test_router_first_does_not_need_the_deterministic_prompt(prompts: Path) -> None:
    (prompts / "supervisor.md").unlink()
    context = ctx(prompts, router_prompt="router.md", mode="router_first")
    assert decide("galph", State(), context, lambda: "reviewer.md").prompt == "reviewer.md"
    with pytest.raises(RoutingError, match="rule 4"):
        decide("galph", State(), ctx(prompts, router_prompt="router.md"), lambda: "reviewer.md")


def test_router_prompt_is_never_asked_on_ralphs_turn(prompts: Path) -> None:
    asked: list[int] = []
    context = ctx(prompts, router_prompt="router.md", mode="router_only")

    def ask() -> str:
        asked.append(1)
        return "reviewer.md"

    state = State(iteration=1, expected_actor="ralph", status="waiting-ralph")
    assert decide("ralph", state, context, ask).prompt == "main.md"
    assert asked == []


def test_router_prompt_itself_must_stay_inside_prompts_dir(prompts: Path) -> None:
    context = ctx(prompts, router_prompt="../router.md")
    with pytest.raises(RoutingError, match=r"router prompt '\.\./router\.md' rejected"):
        validate_router_prompt(context)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(answer=st.text(max_size=80), actor=st.sampled_from(["galph", "ralph"]))
def test_any_router_answer_gives_a_valid_prompt_or_a_routing_error(
    prompts: Path, answer: str, actor: Actor
) -> None:
    context = ctx(prompts, router_prompt="router.md", mode="router_only")
    try:
        decision = decide(actor, State(), context, lambda: answer)
    except RoutingError:
        return
    assert decision.path.is_file()
    assert decision.path.parent == prompts.resolve()
    assert os.path.basename(decision.prompt) in ("supervisor.md", "main.md", "reviewer.md")


@pytest.mark.parametrize(
    "answer",
    [
        "`reviewer.md`",
        "```reviewer.md```",
        '"reviewer.md"',
        "'reviewer.md'",
        "“reviewer.md”",
        " `reviewer` \n",
    ],
)
def test_an_answer_in_a_code_span_or_quotes_names_the_prompt(prompts: Path, answer: str) -> None:
    decision = decide("galph", State(), ctx(prompts, router_prompt="router.md"), lambda: answer)
    assert decision.prompt == "reviewer.md"
    assert decision.source == "router"


_ALLOWLIST_FIX = (
    "; allowlist: supervisor.md, main.md, reviewer.md; add it to router.allowlist or pick another"
)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            "\x1b]0;pwned\x07notes\x1b[2J",
            "prompt '\\u001b]0;pwned\\u0007notes\\u001b[2J' rejected (rule 2: not in the "
            'allowlist); router answer: "\\u001b]0;pwned\\u0007notes\\u001b[2J"' + _ALLOWLIST_FIX,
        ),
        (
            "x\x9b31m\u202eevil",
            "prompt 'x\\u009b31m\\u202eevil' rejected (rule 2: not in the allowlist); "
            'router answer: "x\\u009b31m\\u202eevil"' + _ALLOWLIST_FIX,
        ),
        (
            "a\u2028b",
            'router answer has 2 non-empty lines, not exactly one: "a\\nb"; '
            "make the router prompt answer with just the prompt name",
        ),
    ],
)
def test_control_characters_of_an_answer_are_never_shown_raw(
    prompts: Path, answer: str, expected: str
) -> None:
    """Escaped, not raw, and the message still says which rule the answer broke."""
    with pytest.raises(RoutingError) as caught:
        decide("galph", State(), ctx(prompts, router_prompt="router.md"), lambda: answer)
    message = str(caught.value)
    assert message == expected
    assert all(char.isprintable() for char in message), repr(message)
