"""Error types that reach the user as one clear line."""

from __future__ import annotations


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters: its start and its end (where a fix is said), and how much went."""
    if len(text) <= limit:
        return text
    head, tail = (2 * limit) // 3, limit // 3
    return f"{text[:head]} …({len(text) - head - tail:,} characters left out)… {text[-tail:]}"


def clipped(text: str, limit: int = 200) -> str:
    """``text`` (a user's value) for an error message, at most about ``limit`` characters."""
    if len(text) <= limit:
        return text
    return f"{text[:limit - 40]}…({len(text) - limit + 40:,} more characters)"


def quoted(value: object, limit: int = 200) -> str:
    """``repr(value)`` for an error message, at most about ``limit`` characters (a user's value can be huge)."""
    return clipped(repr(value), limit)


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

    MAX_CHARS = 1000
    """Longest message and path kept (values quoted in them are cut by :func:`quoted` first)."""

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
