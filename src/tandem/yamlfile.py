"""Reading ``orchestration.yaml`` safely: the safe loader, with limits (SPEC §13.1 rule 7).

A config file is input from outside the process. The size is checked before reading,
and alias uses and nesting depth while the document is composed, so a "billion laughs"
file or a deeply nested one is refused before it costs memory or a RecursionError. A
key given twice is an error instead of YAML's silent "last one wins".
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

from tandem.errors import ConfigError

MAX_BYTES = 1024 * 1024
MAX_ALIASES = 32  # 32 aliases expand to at most ~10^5 nodes, however nested
MAX_DEPTH = 40


class _Refused(Exception):
    """The document breaks a rule the safe loader does not know."""

    def __init__(self, message: str, fix: str = "fix the file") -> None:
        super().__init__(message)
        self.fix = fix


def read(path: Path) -> dict[str, Any]:
    """The top-level mapping of ``path`` (empty for an empty file); a ``ConfigError`` else."""
    import yaml

    text = _text(path)
    try:
        data = yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except _Refused as exc:
        raise ConfigError(f"{path.name}: {exc}", exc.fix) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path.name} is not valid YAML{where}: {problem}", "fix the YAML syntax"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path.name} must be a mapping of keys, not {type(data).__name__}",
            "see the README's config reference",
        )
    return data


def _text(path: Path) -> str:
    try:
        if not path.is_file():
            raise ConfigError(f"{path} is not a regular file", "point --config at a YAML file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ConfigError(
                f"{path.name} is larger than {MAX_BYTES // 1024} KiB",
                "a config file is a few lines; check that --config names the right file",
            )
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", "check the file") from None


def _loader() -> type[Any]:
    """A SafeLoader that counts aliases, bounds depth and refuses duplicate keys."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        aliases = 0
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise _Refused(f"more than {MAX_ALIASES} aliases (*name)")
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise _Refused(f"nested more than {MAX_DEPTH} levels deep")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, Hashable):
                    continue  # SafeLoader reports unhashable keys itself
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise _Refused(f"duplicate key '{key}' at line {line}", "keep one of them")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return BoundedLoader
