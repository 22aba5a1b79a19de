"""Error types that reach the user as one clear line."""

from __future__ import annotations


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


class RelcommError(Exception):
    """Base class of every error the simulator raises on purpose."""


class ScenarioError(RelcommError):
    """Invalid user input: a scenario field, a command-line flag, a data file.

    Parameters
    ----------
    message : str
        What is wrong, in one line.
    path : str, optional
        Dotted path of the offending field (``channel.links[0].distance_m``) or a file name.
    line : int, optional
        1-based line number in the YAML file, when known.
    """

    MAX_CHARS = 300
    """Longest message and path kept: a quoted value (a huge string, an expanded list) is cut short."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.message = _shorten(" ".join(str(message).split()), self.MAX_CHARS)
        self.path = None if path is None else _shorten(" ".join(str(path).split()), self.MAX_CHARS)
        self.line = line
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where = f"{where} (line {self.line})" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message


class DataError(ScenarioError):
    """A dataset or cache file is missing or corrupt; says where it looked and how to fix it."""
