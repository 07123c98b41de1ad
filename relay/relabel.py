"""Prometheus relabeling (`relabel_configs`), with the semantics of prometheus/model/relabel.

Written from Prometheus's documented and observed behaviour, not copied. Details kept on purpose:

* Regexes are compiled as ``^(?s:<regex>)$`` with RE2 (Go's regexp dialect), so ``.`` matches
  newlines; the wrapping is plain string concatenation, exactly like Prometheus.
* ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$`` expand like Go's ``Regexp.Expand``: a bare name
  is the longest run of letters, digits and ``_`` (so ``$1x`` is the group named ``1x``).
* Like Prometheus's ``labels.Builder``, an empty value means "no label": empty-valued input labels
  are dropped and setting a label to "" deletes it.
* ``lowercase``/``uppercase`` use Go's per-rune simple case mapping, not Python's full mapping.
* Names follow the legacy Prometheus rule ``[a-zA-Z_][a-zA-Z0-9_]*``.
* YAML ``null`` for a key gives Go's zero value (``separator: ~`` is "", ``regex: ~`` matches only
  ""), as yaml.v2 does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .regexp import Finder, RegexpError, Spans, compile_regex, span_finder

__all__ = ["RelabelError", "Rule", "compile_rules", "process"]

_REPLACE = "replace"
_KEEP = "keep"
_DROP = "drop"
_KEEPEQUAL = "keepequal"
_DROPEQUAL = "dropequal"
_HASHMOD = "hashmod"
_LABELMAP = "labelmap"
_LABELDROP = "labeldrop"
_LABELKEEP = "labelkeep"
_LOWERCASE = "lowercase"
_UPPERCASE = "uppercase"
# Map to the constants so `process` compares interned strings.
_ACTIONS = {
    a: a
    for a in (_REPLACE, _KEEP, _DROP, _KEEPEQUAL, _DROPEQUAL, _HASHMOD,
              _LABELMAP, _LABELDROP, _LABELKEEP, _LOWERCASE, _UPPERCASE)
}
_NEEDS_TARGET = frozenset({_REPLACE, _HASHMOD, _LOWERCASE, _UPPERCASE, _KEEPEQUAL, _DROPEQUAL})
_PLAIN_TARGET = frozenset({_LOWERCASE, _UPPERCASE, _KEEPEQUAL, _DROPEQUAL})

_DEFAULT_SEPARATOR = ";"
_DEFAULT_REGEX = "(.*)"
_DEFAULT_REPLACEMENT = "$1"
_KEYS = ("source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action")

# Prometheus's check for templated names (legacy scheme). Nested repeats: RE2 keeps it linear.
_NAME_TEMPLATE = compile_regex(r"(?:(?:[a-zA-Z_]|\$(?:\{[a-zA-Z0-9_]+\}|[a-zA-Z0-9_]+))+[a-zA-Z0-9_]*)+", anchored=True)
_SURROGATE = re.compile("[\ud800-\udfff]")

# A parsed expansion template: literal bytes and capture-group indexes.
_Template = tuple[bytes | int, ...]


class RelabelError(ValueError):
    """An invalid relabel configuration; the message names the rule (1-based)."""


def _valid_name(name: str) -> bool:
    # For ASCII, isidentifier() is exactly [a-zA-Z_][a-zA-Z0-9_]* and far cheaper than a regex.
    return name.isascii() and name.isidentifier()


def _parse_template(template: str, regex: Any) -> _Template:
    """Parse Go `Regexp.Expand` syntax once, resolving group names against `regex`."""
    pieces: list[bytes | int] = []
    literal: list[str] = []
    n, i = len(template), 0
    while True:
        j = template.find("$", i)
        if j < 0:
            literal.append(template[i:])
            break
        literal.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":  # "$$" is a literal "$"
            literal.append("$")
            i += 1
            continue
        brace = i < n and template[i] == "{"
        k = start = i + 1 if brace else i
        while k < n and (template[k].isalpha() or template[k].isdecimal() or template[k] == "_"):
            k += 1  # Go takes the longest run of letters, digits and "_" as the name
        if k == start or (brace and (k >= n or template[k] != "}")):
            literal.append("$")  # malformed: Go keeps the "$" as text and goes on after it
            continue
        name = template[start:k]
        i = k + 1 if brace else k
        group: int | None
        # Go reads a number only for ASCII digits, at most 9 of them, without a leading zero.
        if name.isascii() and name.isdigit() and len(name) <= 9 and (name == "0" or name[0] != "0"):
            group = int(name) if int(name) <= regex.groups else None
        else:
            group = regex.groupindex.get(name)
        if group is not None:  # an unknown group expands to nothing
            if literal:
                pieces.append("".join(literal).encode())
                literal.clear()
            pieces.append(group)
    if any(literal):
        pieces.append("".join(literal).encode())
    return tuple(p for p in pieces if p != b"")


def _constant(pieces: _Template) -> str | None:
    """The expansion of a template with no group references, else None."""
    if all(isinstance(p, bytes) for p in pieces):
        return b"".join(pieces).decode()  # type: ignore[arg-type]
    return None


def _expand(pieces: _Template, text: bytes, spans: Spans) -> bytes:
    # A (-1, -1) span slices to b"", which is what Go expands a non-participating group to.
    return b"".join([p if p.__class__ is bytes else text[slice(*spans[p])] for p in pieces])  # type: ignore[index]


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled relabel rule. Build it with `compile_rules`, which validates."""

    source_labels: tuple[str, ...]
    separator: str
    regex: Any  # compiled by regexp.compile_regex(..., anchored=True)
    modulus: int
    target_label: str
    replacement: str
    action: str
    # Precomputed so `process` does no parsing: a template, or its constant value when it has no groups.
    _target: _Template = field(init=False, repr=False, compare=False)
    _target_const: str | None = field(init=False, repr=False, compare=False)
    _repl: _Template = field(init=False, repr=False, compare=False)
    _repl_const: str | None = field(init=False, repr=False, compare=False)
    _find: Finder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        action = _ACTIONS.get(self.action)
        if action is None:
            raise ValueError(f"unknown relabel action {self.action!r}")
        object.__setattr__(self, "action", action)  # the interned constant: `process` tests with `is`
        target = _parse_template(self.target_label, self.regex)
        repl = _parse_template(self.replacement, self.regex)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_target_const", _constant(target))
        object.__setattr__(self, "_repl", repl)
        object.__setattr__(self, "_repl_const", _constant(repl))
        object.__setattr__(self, "_find", span_finder(self.regex))


# --- configuration ---------------------------------------------------------------------------


def compile_rules(raw: list[dict[str, Any]] | None) -> list[Rule]:
    """Compile YAML-decoded relabel configs (Prometheus/Promtail keys). Raises RelabelError."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise RelabelError(f"relabel rules must be a list, not {type(raw).__name__}")
    rules = []
    for index, item in enumerate(raw, 1):
        try:
            rules.append(_compile_rule(item))
        except RelabelError as e:
            raise RelabelError(f"relabel rule {index}: {e}") from None
        except UnicodeEncodeError:  # lone surrogates, e.g. from a YAML "\ud800" escape
            raise RelabelError(f"relabel rule {index}: text is not valid Unicode") from None
    return rules


def _text(key: str, value: Any) -> str:
    if value is None:
        return ""  # yaml.v2 sets the Go zero value for an explicit null
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # yaml.v2 decodes `replacement: 1` into the string "1"
    raise RelabelError(f"{key!r} must be a string, not {type(value).__name__}")


def _compile_rule(raw: Any) -> Rule:
    if not isinstance(raw, Mapping):
        raise RelabelError(f"expected a mapping, not {type(raw).__name__}")
    for key in raw:
        if key not in _KEYS:
            raise RelabelError(f"unknown key {key!r} (expected one of {', '.join(_KEYS)})")

    # Decoding, as Prometheus's YAML unmarshalling does it.
    raw_action = raw.get("action", _REPLACE)
    action = _text("action", raw_action)
    if raw_action is not None:  # a null action stays "" and fails validation below
        lowered = _go_lower(action)
        if lowered not in _ACTIONS:
            raise RelabelError(f"unknown relabel action {action!r}")
        action = _ACTIONS[lowered]

    sources = raw.get("source_labels")
    if sources is not None and not isinstance(sources, (list, tuple)):
        raise RelabelError(f"'source_labels' must be a list, not {type(sources).__name__}")
    source_labels = tuple(_text("source_labels", s) for s in sources or ())
    for name in source_labels:
        if not _valid_name(name):
            raise RelabelError(f"{name!r} is not a valid label name")

    separator = _text("separator", raw.get("separator", _DEFAULT_SEPARATOR))
    regex_set = "regex" in raw  # Prometheus compares the regex by identity with its default
    expr = _text("regex", raw.get("regex", _DEFAULT_REGEX))
    try:
        regex = compile_regex(expr, anchored=True)
    except RegexpError as e:
        raise RelabelError(f"invalid regex {expr!r}: {e.detail}") from None

    modulus = raw.get("modulus", 0)
    if modulus is None:
        modulus = 0
    if not isinstance(modulus, int) or isinstance(modulus, bool) or not 0 <= modulus < 1 << 64:
        raise RelabelError(f"'modulus' must be an integer from 0 to 2^64-1, not {modulus!r}")

    target = _text("target_label", raw.get("target_label", ""))
    replacement = _text("replacement", raw.get("replacement", _DEFAULT_REPLACEMENT))

    present = source_labels if sources is not None else None
    _validate(action, present, separator, regex_set, modulus, target, replacement)
    return Rule(source_labels, separator, regex, modulus, target, replacement, action)


def _validate(
    action: str,
    sources: tuple[str, ...] | None,
    separator: str,
    regex_set: bool,
    modulus: int,
    target: str,
    replacement: str,
) -> None:
    """Prometheus's Config.Validate, check for check and in its order (legacy name scheme)."""
    if not action:
        raise RelabelError("relabel action cannot be empty")
    if action == _HASHMOD and modulus == 0:
        raise RelabelError("relabel configuration for hashmod requires non-zero modulus")
    if action in _NEEDS_TARGET and not target:
        raise RelabelError(f"relabel configuration for {action} action requires 'target_label' value")
    if action == _REPLACE and not (_NAME_TEMPLATE.search(target) if "$" in target else _valid_name(target)):
        raise RelabelError(f"{target!r} is invalid 'target_label' for {action} action")
    if action in _PLAIN_TARGET and not _valid_name(target):
        raise RelabelError(f"{target!r} is invalid 'target_label' for {action} action")
    if action in _PLAIN_TARGET and replacement != _DEFAULT_REPLACEMENT:
        raise RelabelError(f"'replacement' can not be set for {action} action")
    if action == _LABELMAP and not _NAME_TEMPLATE.search(replacement):
        raise RelabelError(f"{replacement!r} is invalid 'replacement' for {action} action")
    if action == _HASHMOD and not _valid_name(target):
        raise RelabelError(f"{target!r} is invalid 'target_label' for {action} action")
    if action in (_KEEPEQUAL, _DROPEQUAL) and (
        regex_set or modulus != 0 or separator != _DEFAULT_SEPARATOR or replacement != _DEFAULT_REPLACEMENT
    ):
        raise RelabelError(f"{action} action requires only 'source_labels' and 'target_label', and no other fields")
    if action in (_LABELDROP, _LABELKEEP) and (
        sources is not None  # even `source_labels: []`: Prometheus checks for a non-nil list
        or target
        or modulus != 0
        or separator != _DEFAULT_SEPARATOR
        or replacement != _DEFAULT_REPLACEMENT
    ):
        raise RelabelError(f"{action} action requires only 'regex', and no other fields")


# --- case mapping ----------------------------------------------------------------------------

# Go's strings.ToLower/ToUpper map rune by rune with Unicode's simple mappings. Python's full
# mappings differ only where SpecialCasing applies (ß -> SS, İ -> i̇, final sigma), so take
# Python's result unless it changed length or may hold a final sigma, then go rune by rune.
_SIMPLE_LOWER = {"\u0130": "i"}
# Greek letters with ypogegrammeni: the simple uppercase is the titlecase form (U+1F80 -> U+1F88).
_SIMPLE_UPPER = {
    chr(c): chr(c + 8) for lo in (0x1F80, 0x1F90, 0x1FA0) for c in range(lo, lo + 8)
} | {"\u1fb3": "\u1fbc", "\u1fc3": "\u1fcc", "\u1ff3": "\u1ffc"}


def _go_lower(s: str) -> str:
    out = s.lower()
    if s.isascii() or (len(out) == len(s) and "\u03a3" not in s):
        return out
    return "".join([c.lower() if len(c.lower()) == 1 else _SIMPLE_LOWER.get(c, c) for c in s])


def _go_upper(s: str) -> str:
    out = s.upper()
    if len(out) == len(s):  # every SpecialCasing uppercase is longer than its input
        return out
    return "".join([c.upper() if len(c.upper()) == 1 else _SIMPLE_UPPER.get(c, c) for c in s])


# --- processing ------------------------------------------------------------------------------


def process(labels: Mapping[str, str], rules: Sequence[Rule]) -> dict[str, str] | None:
    """Apply `rules` in order to a copy of `labels`. Returns the new labels, or None if dropped."""
    try:
        return _process(labels, rules)
    except UnicodeEncodeError:
        # Lone surrogates (e.g. from JSON "\ud800") cannot be UTF-8 encoded for RE2 or md5; Go's
        # JSON decoder turns them into U+FFFD, so do the same rather than fail the stream.
        return _process({_SURROGATE.sub("\ufffd", k): _SURROGATE.sub("\ufffd", v) for k, v in labels.items()}, rules)


def _process(labels: Mapping[str, str], rules: Sequence[Rule]) -> dict[str, str] | None:
    cur = {k: v for k, v in labels.items() if v}  # empty value == absent, as in labels.Builder
    # Names set so far, in Go Builder's `add` order; only labelmap's iteration order depends on it.
    added: dict[str, None] = {}
    for rule in rules:
        action = rule.action
        sources = rule.source_labels
        val = cur.get(sources[0], "") if len(sources) == 1 else rule.separator.join([cur.get(n, "") for n in sources])

        if action is _REPLACE:
            text = val.encode()
            spans = rule._find(text, 0)
            if spans is None:
                continue
            target = rule._target_const
            if target is None:
                target = _expand(rule._target, text, spans).decode(errors="replace")
            if not _valid_name(target):
                continue
            value = rule._repl_const
            if value is None:
                value = _expand(rule._repl, text, spans).decode(errors="replace")
            if value:
                cur[target] = value
                added[target] = None
            else:
                cur.pop(target, None)
                added.pop(target, None)
        elif action is _KEEP:
            if rule._find(val.encode(), 0) is None:
                return None
        elif action is _DROP:
            if rule._find(val.encode(), 0) is not None:
                return None
        elif action is _KEEPEQUAL:
            if cur.get(rule.target_label, "") != val:
                return None
        elif action is _DROPEQUAL:
            if cur.get(rule.target_label, "") == val:
                return None
        elif action is _LABELDROP or action is _LABELKEEP:
            find, keep = rule._find, action is _LABELKEEP
            for name in [n for n in cur if (find(n.encode(), 0) is None) == keep]:
                del cur[name]
                added.pop(name, None)
        elif action is _LABELMAP:
            _labelmap(rule, cur, added)
        else:  # lowercase, uppercase, hashmod: set the plain target (an empty value deletes it)
            if action is _HASHMOD:
                digest = hashlib.md5(val.encode(), usedforsecurity=False).digest()
                value = str(int.from_bytes(digest[8:], "big") % rule.modulus)  # last 8 bytes, as Prometheus
            else:
                value = _go_lower(val) if action is _LOWERCASE else _go_upper(val)
            if value:
                cur[rule.target_label] = value
                added[rule.target_label] = None
            else:
                cur.pop(rule.target_label, None)
                added.pop(rule.target_label, None)
    return cur


def _labelmap(rule: Rule, cur: dict[str, str], added: dict[str, None]) -> None:
    # Go's Builder ranges over a snapshot: untouched input labels sorted by name, then the labels
    # set by earlier rules in the order first set. When two names map to one target, the last wins.
    order = [n for n in sorted(cur) if n not in added] if added else sorted(cur)
    order += added
    find = rule._find
    for name, value in [(n, cur[n]) for n in order]:
        raw = name.encode()
        spans = find(raw, 0)
        if spans is None:
            continue
        if spans[0] != (0, len(raw)):  # only with odd regexes like "a)|(b" that escape the anchors
            new = _replace_all(rule, raw)
        elif rule._repl_const is not None:  # the usual case: one match covering the whole name
            new = rule._repl_const
        else:
            new = _expand(rule._repl, raw, spans).decode(errors="replace")
        cur[new] = value  # values are never empty here
        added[new] = None


def _replace_all(rule: Rule, text: bytes) -> str:
    """Go's Regexp.ReplaceAllString with an Expand template: labelmap's general case."""
    out: list[bytes] = []
    last = pos = 0
    end = len(text)
    while pos <= end:
        spans = rule._find(text, pos)
        if spans is None:
            break
        start, stop = spans[0]
        out.append(text[last:start])
        if stop > last or start == 0:  # Go skips an empty match right after the previous match
            out.append(_expand(rule._repl, text, spans))
        last = stop
        # Advance at least one character (UTF-8 width from the lead byte; 0 at the end).
        lead = text[pos] if pos < end else -1
        width = 0 if lead < 0 else 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        if pos + width > stop:
            pos += width
        elif pos + 1 > stop:
            pos += 1
        else:
            pos = stop
    out.append(text[last:])
    return b"".join(out).decode(errors="replace")
