"""The config names of the earlier orchestration scripts and what they mean here (SPEC §12.1).

A host that ran those scripts keeps its ``orchestration.yaml``: each of their keys either
means the same as a tandem key (an alias, rewritten before validation), or is kept but
unused, with one warning line that says why. Nothing they documented is an unknown key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

# flat key of the scripts -> the tandem key that means the same
ALIASES = {
    "router_enabled": "router.enabled",
    "router_mode": "router.mode",
    "router_prompt": "router.prompt",
    "router_review_every_n": "router.review_every_n",
    "router_allowlist": "router.allowlist",
    "doc_whitelist": "autocommit.galph",  # the supervisor's autocommit whitelist
    "tracked_output_globs": "autocommit.tracked_output_globs",
    "tracked_output_extensions": "autocommit.tracked_output_extensions",
    "report_extensions": "autocommit.report_extensions",
    "workflow_name": "workflow.name",
    "workflow_review_every_n": "router.review_every_n",
    "workflow.review_every_n": "router.review_every_n",
}
# keys tandem keeps but does not use, and why
UNUSED = {
    "findings_file": "tandem's prompts name the files they read",
    "input_file": "galph's input.md is committed through autocommit.galph",
    "tmp_dir": "tandem writes no scratch files into the host",
    "spec_bootstrap": "spec bootstrapping is not part of tandem",
}
# the scripts' default report extensions (supervisor.py, config.py)
REPORT_EXTENSIONS = (
    ".png",
    ".jpeg",
    ".npy",
    ".txt",
    ".md",
    ".json",
    ".log",
    ".py",
    ".c",
    ".h",
    ".sh",
)
TRACKED_OUTPUT_EXTENSIONS = (".npy", ".npz", ".json", ".pkl")


def unalias(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """``raw`` with legacy names moved to their tandem keys.

    Returns the rewritten mapping, the problems (an alias and its key set to different
    values), and the legacy name of each tandem key set through one.
    """
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    problems: list[str] = []
    mapped: dict[str, str] = {}
    for legacy, dotted in ALIASES.items():
        found, value = _pop(out, legacy)
        if not found:
            continue
        mapped[dotted] = legacy
        section, key = dotted.split(".")
        target = out.setdefault(section, {})
        if not isinstance(target, dict):
            continue  # the section's own type error is reported by validation
        if key in target and target[key] != value:
            problems.append(f"both {legacy} and {dotted} are set, to different values")
        target[key] = value
    return out, problems, mapped


def unused(raw: dict[str, Any], shown: str) -> tuple[dict[str, Any], list[str]]:
    """``raw`` without the kept-but-unused keys, and one warning line for each."""
    warnings = [
        f"{shown}: {key} is accepted but unused: {why}" for key, why in UNUSED.items() if key in raw
    ]
    return {k: v for k, v in raw.items() if k not in UNUSED}, warnings


def _pop(raw: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    if "." not in dotted:
        return (True, raw.pop(dotted)) if dotted in raw else (False, None)
    section, key = dotted.split(".")
    inner = raw.get(section)
    if isinstance(inner, dict) and key in inner:
        return True, inner.pop(key)
    return False, None


def with_extensions(globs: Iterable[str], extensions: Iterable[str]) -> tuple[str, ...]:
    """Globs that match what ``globs`` match *and* end in one of ``extensions``.

    The scripts filtered paths by a glob and an extension list; tandem's autocommit has
    globs only, so each pair becomes one glob (``reports/**`` + ``.png`` →
    ``reports/**/*.png``). No globs means every path (``**``).
    """
    exts = tuple(e if e.startswith(".") else f".{e}" for e in extensions)
    out: list[str] = []
    for given in tuple(globs) or ("**",):
        glob = given.rstrip("/")
        suffix = PurePosixPath(glob).suffix
        if suffix and not suffix.endswith("*"):
            out += [glob] if suffix.lower() in exts else []
        elif glob.endswith("**"):
            out += [f"{glob}/*{ext}" for ext in exts]
        elif glob.endswith("*"):
            out += [f"{glob}{ext}" for ext in exts]
        else:
            out += [f"{glob}/**/*{ext}" for ext in exts]
    return tuple(dict.fromkeys(out))


def galph_globs(docs: tuple[str, ...], inputs: Mapping[str, Any]) -> tuple[str, ...]:
    """galph's globs: its doc whitelist, plus the scripts' report and tracked-output filters.

    ``inputs`` are the ``autocommit`` keys of the scripts' switches and filters. Reports
    join only when a report option is named (the scripts committed every report extension
    anywhere by default, which tandem's galph does not); tracked outputs only when their
    globs are.
    """
    galph = docs if inputs.get("docs", True) else ()
    named = {"report_extensions", "report_path_globs"} & inputs.keys()
    if inputs.get("reports", bool(named)):
        exts = inputs.get("report_extensions", REPORT_EXTENSIONS)
        galph += with_extensions(inputs.get("report_path_globs", ()), exts)
    if inputs.get("tracked_outputs", True) and inputs.get("tracked_output_globs"):
        exts = inputs.get("tracked_output_extensions", TRACKED_OUTPUT_EXTENSIONS)
        galph += with_extensions(inputs["tracked_output_globs"], exts)
    return tuple(dict.fromkeys(galph))


def step_state(data: dict[str, Any]) -> dict[str, Any]:
    """A state file of the scripts' step era (2fb52b2) in the galph/ralph form.

    That version dropped ``expected_actor`` for ``step_index`` (even: the supervisor, odd:
    the loop) and counted steps in ``iteration``; the statuses lost their actor. A file
    with ``expected_actor`` is returned as it is.
    """
    step = data.get("step_index")
    if "expected_actor" in data or isinstance(step, bool) or not isinstance(step, int):
        return data
    out = {
        k: v for k, v in data.items() if k not in ("step_index", "expected_step", "workflow_name")
    }
    actor = "galph" if step % 2 == 0 else "ralph"
    status = data.get("status")
    if status == "running":
        status = f"running-{actor}"
    elif status == "waiting-next":
        status = "waiting-ralph" if actor == "ralph" else "complete"
    return out | {"iteration": step // 2 + 1, "expected_actor": actor, "status": status}
