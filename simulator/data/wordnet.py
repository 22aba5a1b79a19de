"""WordNet 3.0 noun glosses labelled with their supersense (lexicographer file), read from ``data.noun``."""

from __future__ import annotations

from pathlib import Path

from simulator.errors import DataError

INSTALL_HINT = "apt-get install wordnet-base"
NOUN_LEXNAMES = (
    "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute", "noun.body",
    "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant",
    "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time",
)
"""The 26 noun supersenses: lexicographer files 03–28 of WordNet's 45 (``lexnames(5WN)``);
label i is lexicographer file i + 3."""
_FIRST_NOUN_FILE = 3


def read_wordnet_nouns(path: Path) -> tuple[list[str], list[int]]:
    """Noun glosses and their supersense labels, in file (offset) order.

    Each data line is ``offset lex_filenum ss_type w_cnt word lex_id … p_cnt pointers… | gloss``
    (``wndb(5WN)``); the file is latin-1 and opens with licence lines that start with two spaces.
    The sample is the gloss alone, as WordNet writes it: the definition, then any quoted usage
    examples after ``;``. The lemmas are left out, so the task is to tell a supersense from a
    definition (WordNet 3.0: 82,115 noun synsets).

    Parameters
    ----------
    path : Path
        ``data.noun``.

    Returns
    -------
    glosses : list of str
    labels : list of int
        Index into :data:`NOUN_LEXNAMES`.

    Raises
    ------
    DataError
        Unreadable file or a line that does not follow the format (its number is given).
    """
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except OSError as exc:
        raise DataError(f"dataset 'wordnet-supersenses': cannot read {path}: {exc}; reinstall with "
                        f"'{INSTALL_HINT}'", path=str(path)) from None
    glosses: list[str] = []
    labels: list[int] = []
    for number, line in enumerate(lines, start=1):
        if line.startswith("  ") or not line.strip():
            continue
        head, bar, gloss = line.partition(" | ")
        fields = head.split()
        lexfile = int(fields[1]) if len(fields) > 3 and fields[1].isdigit() else -1
        label = lexfile - _FIRST_NOUN_FILE
        if not bar or not gloss.strip() or not 0 <= label < len(NOUN_LEXNAMES) or fields[2] != "n":
            raise DataError(f"dataset 'wordnet-supersenses': {path} line {number} is not a noun "
                            f"synset with a gloss (corrupt file? reinstall with '{INSTALL_HINT}')",
                            path=str(path))
        glosses.append(gloss.strip())
        labels.append(label)
    if not glosses:
        raise DataError(f"dataset 'wordnet-supersenses': {path} holds no synsets; reinstall with "
                        f"'{INSTALL_HINT}'", path=str(path))
    return glosses, labels
