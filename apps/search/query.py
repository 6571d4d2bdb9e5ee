"""Web-search syntax, parsed once and rendered for each database.

`cache leak`          both words
`"lru cache"`         the phrase
`-redis`              not the word (also `-"a phrase"`)
`leak or growth`      either word
`cache.py`, `a/b/`    a file path fragment (anything with a `/`, or a name with an extension);
`path:cache`          forces one. Paths match files touched as substrings, never the text.
"""

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

MAX_QUERY_LENGTH = 500
MAX_TERMS = 32
_TOKEN = re.compile(r'(-?)(?:"([^"]*)"|(\S+))')
_PATH_LIKE = re.compile(r"/|^[\w.-]*\w\.[A-Za-z][A-Za-z0-9]{0,9}$")
# Characters that only the query syntax gives meaning to; inside a word they separate words.
_WORD_CHARS = re.compile(r"[^\w'-]+")


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool = False


@dataclass
class ParsedQuery:
    """All of `groups` must match (each group: any of its terms), none of `excluded`."""

    groups: list[list[Term]] = field(default_factory=list)
    excluded: list[Term] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    excluded_paths: list[str] = field(default_factory=list)

    @property
    def has_words(self) -> bool:
        return bool(self.groups or self.excluded)

    @property
    def is_empty(self) -> bool:
        return not (self.has_words or self.paths or self.excluded_paths)


def _words(text: str) -> str:
    return " ".join(_WORD_CHARS.sub(" ", text).split())


def parse(text: str) -> ParsedQuery:
    """Parse `text`; ValidationError (on `q`) says what is wrong with it."""
    text = (text or "").strip()
    if len(text) > MAX_QUERY_LENGTH:
        raise ValidationError({"q": f"Use at most {MAX_QUERY_LENGTH} characters."})
    if "\x00" in text:
        raise ValidationError({"q": "Null characters are not allowed."})
    if text.count('"') % 2:
        raise ValidationError({"q": 'A quote is not closed: phrases go between two ".'})
    parsed = ParsedQuery()
    pending_or = False
    count = 0
    for match in _TOKEN.finditer(text):
        negated, quoted, bare = match.group(1) == "-", match.group(2), match.group(3)
        count += 1
        if count > MAX_TERMS:
            raise ValidationError({"q": f"Use at most {MAX_TERMS} words, phrases and paths."})
        if quoted is None and bare.lower() == "or" and not negated:
            if not parsed.groups or pending_or:
                raise ValidationError({"q": '"or" goes between two words or phrases.'})
            pending_or = True
            continue
        if quoted is None and (bare.lower().startswith("path:") or _PATH_LIKE.search(bare)):
            path = bare[5:] if bare.lower().startswith("path:") else bare
            if path:
                (parsed.excluded_paths if negated else parsed.paths).append(path.lower())
            pending_or = False
            continue
        words = _words(quoted if quoted is not None else bare)
        if not words:
            continue
        term = Term(words, phrase=quoted is not None or " " in words)
        if negated:
            parsed.excluded.append(term)
        elif pending_or:
            parsed.groups[-1].append(term)
        else:
            parsed.groups.append([term])
        pending_or = False
    if pending_or:
        raise ValidationError({"q": '"or" goes between two words or phrases.'})
    return parsed


def to_websearch(parsed: ParsedQuery, *, include_excluded: bool = True) -> str:
    """The query again in PostgreSQL's websearch_to_tsquery syntax, paths left out."""

    def one(term: Term) -> str:
        return f'"{term.text}"' if term.phrase else term.text

    parts = [" or ".join(one(t) for t in group) for group in parsed.groups]
    if include_excluded:
        parts += [f"-{one(t)}" for t in parsed.excluded]
    return " ".join(parts)


def _fts5_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def to_fts5(parsed: ParsedQuery) -> str:
    """The positive part of the query as an FTS5 MATCH expression (every term quoted)."""
    groups = [
        "(" + " OR ".join(_fts5_string(t.text) for t in group) + ")" for group in parsed.groups
    ]
    return " AND ".join(groups)


def to_fts5_excluded(parsed: ParsedQuery) -> list[str]:
    """One FTS5 expression per excluded word or phrase."""
    return [_fts5_string(t.text) for t in parsed.excluded]
