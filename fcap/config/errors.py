"""ConfigError: every problem found in a configuration, reported at once."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One mistake: where it came from, the dotted key, and what is wrong."""

    source: str  # file path, "command line", "profile tiny", "variant asr", ...
    key: str  # dotted key, '' for the document root
    message: str

    def __str__(self) -> str:
        # a key holding a newline or escape code is shown escaped, one problem per line
        key = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.key) or "(top level)"
        return f"{self.source}: {key}: {self.message}"


class ConfigError(ValueError):
    """All problems of one configuration; ``str()`` lists each on its own line."""

    def __init__(self, problems: list[Problem] | Problem, *, title: str = "") -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        self.title = title
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        head = self.title or "invalid configuration"
        lines = [f"{head}: {n} problem{'s' if n != 1 else ''}"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)
