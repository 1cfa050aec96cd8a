"""What counts as a secret, and how it is shown: "changed", never the value.

A value is secret when its name matches a name pattern (``*PASSWORD*``,
``*TOKEN*``... on env variables and ConfigMap keys) or when the value itself
looks like a credential (a Slack or GitHub token, an AWS key id, a PEM block).
Every path from the cluster or an alert to a person or a record runs through
here: the rollback preview and plan, the timeline (summary and data, before
they are stored), the Slack text escape, and the exports.

Snapshots are the exception, on purpose: restoring a ConfigMap needs its real
values, so ``snapshots.body`` keeps them. They are never rendered (the lines
that describe a restore are redacted); protect the database accordingly.

The patterns can be replaced at start-up (``configure``; the settings
``REDACT_NAME_PATTERNS`` and ``REDACT_VALUE_PATTERNS``, comma-separated).
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

MARK = "[redacted]"
#: Shorter configured secrets are not hidden as literals (they would hide common words).
MIN_LITERAL = 8
# The bot's own field names that merely contain a pattern's word (a flag's ``key``).
_OWN_FIELDS = frozenset({"key", "keys", "flag_key"})

DEFAULT_NAME_PATTERNS: tuple[str, ...] = (
    "*PASSWORD*",
    "*PASSWD*",
    "*SECRET*",
    "*TOKEN*",
    "*KEY*",
    "*CREDENTIAL*",
    "*AUTHORIZATION*",  # an HTTP header kept as a map
)
DEFAULT_VALUE_PATTERNS: tuple[str, ...] = (
    r"xox[abposre]-[A-Za-z0-9-]+",  # Slack tokens
    r"xapp-[A-Za-z0-9-]+",  # Slack app-level tokens
    r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",  # AWS access key ids
    r"-----BEGIN [A-Z0-9 ]*-----[\s\S]*?(?:-----END [A-Z0-9 ]*-----|\Z)",  # PEM blocks
    # An HTTP Authorization header written out, whatever its scheme
    r"(?i:\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic|token|digest|negotiate)\s+)?[^\s\"',;]+)",
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/-]{12,}=*)",  # a bearer token on its own
)

# ``NAME=value`` or ``NAME: value`` in free text (a pasted env line, a ConfigMap entry, a
# query string, a log line): the value is hidden when the name is secret by the name patterns.
_IDENT = "[A-Za-z0-9_.-]"
_ASSIGNED = r"""(["']?[ \t]*[=:][ \t]*)("[^"\n]*"|'[^'\n]*'|[^\s,;&"'<>]+)"""


# -- gates: what a text must contain before a pattern can match it ---------------------------
#
# The export runs megabytes of text through both expressions; Python's regular expressions
# try every alternative at every position (about 0.1 us per character here: 0.9 s for a
# 10,000-event Markdown export). A pattern can only match a text that contains its required
# literal, and ``str`` searches for literals at memory speed, so the expressions run only on
# text that holds one of them. The gates are exact: a pattern without a known literal (one
# configured by REDACT_VALUE_PATTERNS, say) disables the gate and the expression always runs.

#: For each default value pattern, expressions one of which must match where it matches:
#: (regex, on the lower-cased text). Each starts with a literal, which the regex engine
#: scans for at memory speed (faster than ``in`` for needles this short).
_VALUE_HINTS: dict[str, tuple[tuple[str, bool], ...]] = {
    DEFAULT_VALUE_PATTERNS[0]: (("x(?:ox|app-)", False),),
    DEFAULT_VALUE_PATTERNS[1]: (("x(?:ox|app-)", False),),
    DEFAULT_VALUE_PATTERNS[2]: (("gh[pousr]_", False),),
    DEFAULT_VALUE_PATTERNS[3]: (("github_pat_", False),),
    DEFAULT_VALUE_PATTERNS[4]: (("A[KS]IA", False),),
    DEFAULT_VALUE_PATTERNS[5]: (("-----BEGIN ", False),),
    DEFAULT_VALUE_PATTERNS[6]: (("authorization", True),),
    DEFAULT_VALUE_PATTERNS[7]: (("bearer", True),),
}
#: Every character a match of a hint above can hold (a test walks the hints' expressions).
_HINT_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_- ")
#: Characters that case-insensitive matching pairs with ASCII letters (sre's folding:
#: U+0130 and U+0131 with i, U+017F with s, U+212A with k). A text holding one is not
#: gated: the expressions run on it.
_FOLD_TO_ASCII = ("\u0130", "\u0131", "\u017f", "\u212a")


class _Gate:
    """Expressions of which at least one must match for the guarded expression to match.

    They run on the text's ASCII bytes (``encode("ascii", "replace")``: every other
    character becomes ``?``, which no hint contains), lower-cased for the case-insensitive
    hints; bytes scan faster than a ``str`` holding any non-ASCII character.
    """

    def __init__(self, exact: Iterable[str], folded: Iterable[str]) -> None:
        self.exact = _searches(exact)
        self.folded = _searches(folded)

    def may_match(self, raw: bytes, low: list[bytes]) -> bool:
        if any(search(raw) for search in self.exact):
            return True
        if not self.folded:
            return False
        if not low:
            low.append(raw.lower())
        return any(search(low[0]) for search in self.folded)


#: An expression that is a plain literal (``re.escape`` of a text, or letters and digits).
_PLAIN = re.compile(r"(?:[^\\.^$*+?{}\[\]|()]|\\[^A-Za-z0-9])+")


def _searches(hints: Iterable[str]) -> tuple[Callable[[bytes], object], ...]:
    """A search per hint: ``bytes.find``'s for the plain literals (a third to a sixth of the
    regular expression engine's instructions per byte here), the expression's otherwise."""
    out: list[Callable[[bytes], object]] = []
    for hint in dict.fromkeys(hints):
        if _PLAIN.fullmatch(hint):
            out.append(_Literal(re.sub(r"\\(.)", r"\1", hint).encode()))
        else:
            out.append(re.compile(hint.encode()).search)
    return tuple(out)


class _Literal:
    __slots__ = ("literal",)

    def __init__(self, literal: bytes) -> None:
        self.literal = literal

    def __call__(self, text: bytes) -> bool:
        return self.literal in text


def _value_gate(literals: Iterable[str], patterns: Iterable[str]) -> _Gate | None:
    exact: list[str] = []
    folded: list[str] = []
    for literal in literals:
        if not literal.isascii():
            return None
        exact.append(re.escape(literal))
    for pattern in patterns:
        hints = _VALUE_HINTS.get(pattern)
        if hints is None:  # a configured pattern: no gate, the expression always runs
            return None
        for regex, insensitive in hints:
            (folded if insensitive else exact).append(regex)
    return _Gate(exact, folded)


def _name_gate(names: Iterable[str]) -> _Gate | None:
    """Each name glob's longest run without wildcards, in any case."""
    required = []
    for name in names:
        longest = max(re.split(r"[*?]", name), key=len)
        if not longest or not longest.isascii():
            return None
        required.append(re.escape(longest.lower()))
    return _Gate((), required)


def _glob_regex(pattern: str) -> str:
    """A name glob (``*PASSWORD*``) as a regex over identifier characters."""
    out = []
    for ch in pattern:
        out.append(f"{_IDENT}*" if ch == "*" else _IDENT if ch == "?" else re.escape(ch))
    return "".join(out)


class Redactor:
    def __init__(
        self,
        names: Iterable[str] = DEFAULT_NAME_PATTERNS,
        values: Iterable[str] = DEFAULT_VALUE_PATTERNS,
        literals: Iterable[str] = (),
    ) -> None:
        self.name_patterns = tuple(n.upper() for n in names)
        self.value_patterns = tuple(values)
        # The bot's own secrets (its tokens, the signing secret), hidden wherever they appear
        # whatever they look like; longest first so one never leaves a tail of another.
        self.literals = tuple(
            sorted({v for v in literals if len(v) >= MIN_LITERAL}, key=len, reverse=True)
        )
        names_regex = "|".join(_glob_regex(n) for n in self.name_patterns) or r"(?!)"
        # fnmatchcase over every pattern, in one compiled match (alert storms judge
        # every label and annotation name).
        self._name_re = re.compile(
            "|".join(fnmatch.translate(n) for n in self.name_patterns) or r"(?!)"
        )
        self._assignment_re = re.compile(
            rf"(?<!{_IDENT})(?i:({names_regex}))(?!{_IDENT}){_ASSIGNED}"
        )
        patterns = [*(re.escape(v) for v in self.literals), *self.value_patterns]
        joined = "|".join(f"(?:{v})" for v in patterns)
        self._value = re.compile(joined or r"(?!)")
        self._value_gate = _value_gate(self.literals, self.value_patterns)
        self._name_gate = _name_gate(self.name_patterns)
        # What the gates' hints can hold: the default hints' characters, the literals', and
        # the name globs' runs without wildcards (in either case).
        self._hint_characters = _HINT_CHARACTERS.union(
            *self.literals, *(n.lower() + n for n in self.name_patterns)
        )

    def secret_name(self, name: str) -> bool:
        return self._name_re.match(name.upper()) is not None

    def looks_secret(self, value: str) -> bool:
        return bool(self._value.search(value))

    def text(self, text: str) -> str:
        """``text`` with every secret-looking value replaced by ``[redacted]``."""
        if not text:
            return text
        if len(text) < 512 or (
            not text.isascii() and any(c in text for c in _FOLD_TO_ASCII)
        ):  # short (the gates would cost more than they save), or not gated
            return self._assignment_re.sub(self._assignment, self._value.sub(MARK, text))
        raw, low = text.encode("ascii", "replace"), list[bytes]()
        if self._value_gate is None or self._value_gate.may_match(raw, low):
            text = self._value.sub(MARK, text)
            raw, low = text.encode("ascii", "replace"), list[bytes]()
        if self._name_gate is None or self._name_gate.may_match(raw, low):
            text = self._assignment_re.sub(self._assignment, text)
        return text

    def hints_stop_at(self, delimiters: str) -> bool:
        """Whether no gate's hint can hold any of ``delimiters``.

        Then every hint in a text lies within one run of its other characters, and a text
        whose runs all lie in texts :meth:`may_change` cleared holds no hint: :meth:`text`
        leaves it as it is (the gates are exact). The export builds its JSON so: each run
        lies within a stored value, a time or a piece of the writer's own text.
        """
        gated = self._value_gate is not None and self._name_gate is not None
        return gated and self._hint_characters.isdisjoint(delimiters)

    def may_change(self, text: str) -> bool:
        """False only when no gate's hint is in ``text``, so :meth:`text` leaves it as it is;
        True when one is, or when the gates cannot tell (configured value patterns without
        hints, characters that fold to ASCII letters)."""
        if self._value_gate is None or self._name_gate is None:
            return True
        if not text.isascii() and any(c in text for c in _FOLD_TO_ASCII):
            return True
        raw, low = text.encode("ascii", "replace"), list[bytes]()
        return self._value_gate.may_match(raw, low) or self._name_gate.may_match(raw, low)

    def _assignment(self, match: re.Match[str]) -> str:
        name = match.group(1)
        if name.lower() in _OWN_FIELDS:
            return match.group(0)
        return f"{name}{match.group(2)}{MARK}"

    def value(self, name: str, value: str | None) -> str | None:
        """How the value of ``name`` may be shown: itself, or ``[redacted]``."""
        if value is None:
            return None
        return MARK if self.secret_name(name) else self.text(value)

    def tree(self, node: Any, name: str = "") -> Any:
        """A JSON-like structure with secret-named entries and secret-looking values hidden."""
        if isinstance(node, Mapping):
            return {k: self.tree(v, str(k)) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [self.tree(v, name) for v in node]
        if isinstance(node, str):
            hidden = name and name not in _OWN_FIELDS and self.secret_name(name)
            return MARK if hidden else self.text(node)
        return node

    def values(self, node: Any) -> Any:
        """A JSON-like structure with secret-looking values hidden; names are not judged."""
        if isinstance(node, Mapping):
            return {k: self.values(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [self.values(v) for v in node]
        return self.text(node) if isinstance(node, str) else node


_lock = threading.Lock()
_current = Redactor()


def configure(
    names: Iterable[str] | None = None,
    values: Iterable[str] | None = None,
    literals: Iterable[str] = (),
) -> Redactor:
    """Replace the patterns for the whole process (from the settings, at start-up).

    ``literals`` are the bot's own secret values (tokens, signing secret): they are hidden
    wherever they appear, even when they look like nothing in particular.
    """
    global _current
    with _lock:
        _current = Redactor(
            DEFAULT_NAME_PATTERNS if names is None else names,
            DEFAULT_VALUE_PATTERNS if values is None else values,
            literals,
        )
        return _current


def current() -> Redactor:
    return _current


def redact_text(text: str) -> str:
    return _current.text(text)


def redact_value(name: str, value: str | None) -> str | None:
    return _current.value(name, value)


def redact_tree(node: Any) -> Any:
    return _current.tree(node)


def redact_values(node: Any) -> Any:
    return _current.values(node)


def secret_name(name: str) -> bool:
    return _current.secret_name(name)
