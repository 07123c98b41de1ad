"""A compiled subset of Go's text/template, enough for Promtail's `template` and `replace` stages.

Supported: text and `{{ }}` actions with `{{-`/`-}}` trim markers and `{{/* comments */}}`; pipelines
`a | f b`; `.`, `.Name`, `.a.b`; string (interpreted and raw), number, `true`/`false`/`nil` literals;
parenthesised pipelines; `if`/`else if`/`else`/`end` and `with`; Go's builtins `and`, `or`, `not`, `eq`,
`ne`, `lt`, `le`, `gt`, `ge`, `len`, `index`, `print`, `printf`, `println`; Promtail's own functions
and the commonly used part of sprig (see FUNCTIONS). `range`, `define`, `template`, `block` and
variables are refused at parse time.

`Template(text)` parses once (TemplateError on a syntax error or an unknown function);
`execute(data)` walks closures built at parse time. A missing map key is Go's "no value": it prints
`<no value>`, is false in `if`, is nil for an `interface{}` argument and an error for a string one.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..cache import BoundedCache
from ..regexp import RegexpError, compile_regex
from .values import format_float


class TemplateError(ValueError):
    """A template that does not parse, or an error while executing one."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()
_NO_ARG: Any = object()  # "no piped value" marker

# Go's %v prints floats in %g form with the shortest digits, switching to an exponent from 1e6 (1e+06).
EXPONENT_FROM = 6

# --- values as Go prints and tests them -----------------------------------------------------------


def go_float(value: float) -> str:
    """fmt's %v for a float64: shortest digits, exponent form when the exponent is < -4 or >= 6."""
    if math.isnan(value) or math.isinf(value):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    if value == 0:
        return "-0" if repr(value).startswith("-") else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    exp = len(digits) + exponent - 1
    if -4 <= exp < EXPONENT_FROM:
        return format_float(value)
    text = "".join(map(str, digits))
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def to_text(value: Any) -> str:
    if type(value) is str:
        return value
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is float:
        return go_float(value)
    if type(value) is int:
        return str(value)
    if isinstance(value, list):
        return "[" + " ".join(to_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{to_text(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def truth(value: Any) -> bool:
    if value is MISSING or value is None:
        return False
    if isinstance(value, (str, list, dict, bool, int, float)):
        return bool(value)
    return True


# --- Go regexp replacement templates ($1, ${name}) -------------------------------------------------

_REGEX_CACHE: BoundedCache[str, Any] = BoundedCache(256)


def compile_go_regex(expression: str) -> Any:
    regex = _REGEX_CACHE.get(expression)
    if regex is None:
        try:
            regex = compile_regex(expression)
        except RegexpError as err:
            raise TemplateError(f"regexp: Compile({expression!r}): {err}") from None
        _REGEX_CACHE.put(expression, regex)
    return regex


_EXPAND_NAME = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+)|(\$))")


def go_expand(template: str, match: Any, groupindex: dict[str, int]) -> str:
    """Go's Regexp.Expand: $1, $name, ${name}, $$; an unknown group is empty, a stray $ stays."""
    if "$" not in template:
        return template

    def one(m: re.Match[str]) -> str:
        if m.group(3):
            return "$"
        name = m.group(1) or m.group(2)
        if name.isdigit():
            index = int(name)
        else:
            index = groupindex.get(name, -1)
        if index < 0 or index > match.re.groups:
            return ""
        return match.group(index) or ""

    return _EXPAND_NAME.sub(one, template)


def regex_replace_all(expression: str, text: str, replacement: str, literal: bool = False) -> str:
    regex = compile_go_regex(expression)
    groupindex = regex.groupindex
    out: list[str] = []
    last = 0
    for match in regex.finditer(text):
        start, end = match.span()
        out.append(text[last:start])
        out.append(replacement if literal else go_expand(replacement, match, groupindex))
        last = end
    out.append(text[last:])
    return "".join(out)


# --- functions ------------------------------------------------------------------------------------
# Each function has a signature: a string of argument kinds ('s' string, 'i' int, 'a' anything) and
# whether the last kind repeats. Go converts and checks arguments against the Go function's types.


def _go_trim(s: str, cutset: str) -> str:
    return s.strip(cutset) if cutset else s


def _go_replace(s: str, old: str, new: str, n: int) -> str:
    if n < 0:
        if old == "":
            return new + new.join(s) + new if s else new
        return s.replace(old, new)
    return s.replace(old, new, n)


def _strval(value: Any) -> str:
    if value is None or value is MISSING:
        return ""
    return to_text(value)


def _empty(value: Any) -> bool:
    return not truth(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 0) if value[:2].lower() in ("0x", "0o", "0b") else int(float(value))
        except ValueError:
            return 0
    return 0


def _to_float(value: Any) -> float:
    try:
        return float(value) if not isinstance(value, (list, dict)) and value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def _default(default: Any, *given: Any) -> Any:
    if not given or _empty(given[0]):
        return default
    return given[0]


def _quote(*values: Any, mark: str = '"') -> str:
    out = []
    for value in values:
        if value is None or value is MISSING:
            continue
        text = _strval(value)
        if mark == '"':
            escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
            out.append('"' + escaped.replace("\r", "\\r") + '"')
        else:
            out.append("'" + text + "'")
    return " ".join(out)


def _substr(start: int, end: int, s: str) -> str:
    if start < 0:
        return s[:end]
    if end < 0 or end > len(s):
        return s[start:]
    return s[start:end]


def _trunc(c: int, s: str) -> str:
    if c < 0 and len(s) + c > 0:
        return s[len(s) + c:]
    if c >= 0 and len(s) > c:
        return s[:c]
    return s


def _printf(fmt: str, *args: Any) -> str:
    out: list[str] = []
    items = iter(args)
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%" or i + 1 == len(fmt):
            out.append(c)
            i += 1
            continue
        verb = fmt[i + 1]
        i += 2
        if verb == "%":
            out.append("%")
            continue
        value = next(items, _NO_ARG)
        if value is _NO_ARG:
            out.append(f"%!{verb}(MISSING)")
        elif verb in "vs":
            out.append(to_text(value))
        elif verb == "d" and isinstance(value, int):
            out.append(str(value))
        elif verb == "q":
            out.append(_quote(value))
        else:
            out.append(to_text(value))
    return "".join(out)


def _len(value: Any) -> int:
    if isinstance(value, (str, list, dict)):
        return len(value.encode()) if isinstance(value, str) else len(value)
    raise TemplateError(f"len of type {type(value).__name__}")


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key, MISSING)
        elif isinstance(item, (list, str)) and isinstance(key, int):
            if not 0 <= key < len(item):
                raise TemplateError(f"index out of range: {key}")
            item = item[key]
        else:
            raise TemplateError("can't index item")
    return item


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    if a is MISSING or b is MISSING:
        raise TemplateError("invalid type for comparison")
    numeric = (int, float)
    if isinstance(a, bool) != isinstance(b, bool) or (
        not (isinstance(a, numeric) and isinstance(b, numeric)) and type(a) is not type(b)
    ):
        raise TemplateError("incompatible types for comparison")
    return a, b


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    for b in others:
        x, y = _comparable(a, b)
        if x == y:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    x, y = _comparable(a, b)
    if isinstance(x, bool):
        raise TemplateError("invalid type for comparison")
    return bool(x < y)


FUNCTIONS: dict[str, tuple[Callable[..., Any], str, bool]] = {
    # Promtail's own
    "ToLower": (str.lower, "s", False),
    "ToUpper": (str.upper, "s", False),
    "Replace": (_go_replace, "sssi", False),
    "Trim": (_go_trim, "ss", False),
    "TrimLeft": (lambda s, cut: s.lstrip(cut) if cut else s, "ss", False),
    "TrimRight": (lambda s, cut: s.rstrip(cut) if cut else s, "ss", False),
    "TrimPrefix": (lambda s, p: s[len(p):] if p and s.startswith(p) else s, "ss", False),
    "TrimSuffix": (lambda s, p: s[: -len(p)] if p and s.endswith(p) else s, "ss", False),
    "TrimSpace": (str.strip, "s", False),
    "Hash": (lambda salt, s: hashlib.sha3_256((salt + s).encode()).hexdigest(), "ss", False),
    "Sha2Hash": (lambda salt, s: hashlib.sha256((salt + s).encode()).hexdigest(), "ss", False),
    "regexReplaceAll": (regex_replace_all, "sss", False),
    "regexReplaceAllLiteral": (lambda r, s, repl: regex_replace_all(r, s, repl, True), "sss", False),
    # Go's builtins (and/or/not/eq/... are handled specially where they short-circuit)
    "not": (lambda v: not truth(v), "a", False),
    "eq": (_eq, "a", True),
    "ne": (lambda a, b: not _eq(a, b), "aa", False),
    "lt": (_lt, "aa", False),
    "le": (lambda a, b: _lt(a, b) or _eq(a, b), "aa", False),
    "gt": (lambda a, b: not (_lt(a, b) or _eq(a, b)), "aa", False),
    "ge": (lambda a, b: not _lt(a, b), "aa", False),
    "len": (_len, "a", False),
    "index": (_index, "aa", True),
    "print": (lambda *a: "".join(to_text(v) for v in a), "a", True),
    "println": (lambda *a: " ".join(to_text(v) for v in a) + "\n", "a", True),
    "printf": (_printf, "sa", True),
    # sprig (the text-oriented part)
    "default": (_default, "aa", True),
    "empty": (_empty, "a", False),
    "coalesce": (lambda *a: next((v for v in a if truth(v)), None), "a", True),
    "ternary": (lambda t, f, c: t if c else f, "aaa", False),
    "contains": (lambda sub, s: sub in s, "ss", False),
    "hasPrefix": (lambda p, s: s.startswith(p), "ss", False),
    "hasSuffix": (lambda p, s: s.endswith(p), "ss", False),
    "lower": (str.lower, "s", False),
    "upper": (str.upper, "s", False),
    "title": (lambda s: re.sub(r"(?<![^\W_])\w", lambda m: m.group().upper(), s), "s", False),
    "trim": (str.strip, "s", False),
    "trimAll": (lambda cut, s: s.strip(cut) if cut else s, "ss", False),
    "trimPrefix": (lambda p, s: s[len(p):] if p and s.startswith(p) else s, "ss", False),
    "trimSuffix": (lambda p, s: s[: -len(p)] if p and s.endswith(p) else s, "ss", False),
    "replace": (lambda old, new, s: _go_replace(s, old, new, -1), "sss", False),
    "repeat": (lambda n, s: s * max(n, 0), "is", False),
    "substr": (_substr, "iis", False),
    "trunc": (_trunc, "is", False),
    "nospace": (lambda s: "".join(s.split()), "s", False),
    "quote": (_quote, "a", True),
    "squote": (lambda *a: _quote(*a, mark="'"), "a", True),
    "cat": (lambda *a: " ".join(_strval(v) for v in a if v is not None and v is not MISSING), "a", True),
    "splitList": (lambda sep, s: s.split(sep) if sep else list(s), "ss", False),
    "join": (lambda sep, v: sep.join(_strval(x) for x in v) if isinstance(v, list) else _strval(v), "sa", False),
    "b64enc": (lambda s: base64.b64encode(s.encode()).decode(), "s", False),
    "b64dec": (lambda s: base64.b64decode(s.encode()).decode(errors="replace"), "s", False),
    "sha256sum": (lambda s: hashlib.sha256(s.encode()).hexdigest(), "s", False),
    "sha1sum": (lambda s: hashlib.sha1(s.encode()).hexdigest(), "s", False),
    "toString": (_strval, "a", False),
    "regexMatch": (lambda r, s: compile_go_regex(r).search(s) is not None, "ss", False),
    "regexFind": (lambda r, s: (m.group(0) if (m := compile_go_regex(r).search(s)) else ""), "ss", False),
    "atoi": (lambda s: _to_int(s) if re.fullmatch(r"[+-]?\d+", s) else 0, "s", False),
    "int": (_to_int, "a", False),
    "int64": (_to_int, "a", False),
    "float64": (_to_float, "a", False),
    "add": (lambda *a: sum(_to_int(v) for v in a), "a", True),
    "sub": (lambda a, b: _to_int(a) - _to_int(b), "aa", False),
    "mul": (lambda *a: math.prod(_to_int(v) for v in a), "a", True),
    "div": (lambda a, b: int(_to_int(a) / _to_int(b)), "aa", False),
    "mod": (lambda a, b: _to_int(a) - _to_int(b) * int(_to_int(a) / _to_int(b)), "aa", False),
    "max": (lambda a, *r: max(_to_int(v) for v in (a, *r)), "a", True),
    "min": (lambda a, *r: min(_to_int(v) for v in (a, *r)), "a", True),
    "list": (lambda *a: list(a), "a", True),
}


def _convert(value: Any, kind: str, name: str) -> Any:
    if kind == "a":
        return None if value is MISSING else value
    if kind == "s":
        if type(value) is str:
            return value
        if value is MISSING:
            raise TemplateError(f"error calling {name}: invalid value; expected string")
        raise TemplateError(f"wrong type for value; expected string; got {type(value).__name__}")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TemplateError(f"wrong type for value; expected int; got {type(value).__name__}")


def _call(name: str, args: list[Any]) -> Any:
    fn, kinds, variadic = FUNCTIONS[name]
    fixed = len(kinds) - 1 if variadic else len(kinds)
    if len(args) < fixed or (not variadic and len(args) != fixed):
        raise TemplateError(f"wrong number of args for {name}: want {fixed} got {len(args)}")
    converted = [_convert(a, kinds[min(i, len(kinds) - 1)], name) for i, a in enumerate(args)]
    try:
        return fn(*converted)
    except TemplateError:
        raise
    except Exception as err:
        raise TemplateError(f"error calling {name}: {err}") from None


# --- lexer ----------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<str>"(?:[^"\\\n]|\\.)*")
    |(?P<raw>`[^`]*`)
    |(?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))
    |(?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
    |(?P<dot>\.)
    |(?P<var>\$[A-Za-z0-9_]*)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>:=|[()|,=])
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            out.append(chr(int(body[i + 2: i + 2 + width], 16)))
            i += 2 + width
        elif e in "01234567":
            out.append(chr(int(body[i + 1: i + 4], 8)))
            i += 4
        else:
            raise TemplateError(f"invalid syntax in string {text}")
    return "".join(out)


def _tokens(action: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(action):
        m = _TOKEN.match(action, pos)
        if m is None:
            raise TemplateError(f"unexpected {action[pos]!r} in command")
        kind = m.lastgroup or ""
        if kind != "space":
            out.append((kind, m.group()))
        pos = m.end()
    return out


def _split(text: str) -> list[tuple[str, str]]:
    """The template as ('text', s) and ('action', s) parts, trim markers applied."""
    parts: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    while True:
        start = text.find("{{", pos)
        chunk = text[pos:] if start < 0 else text[pos:start]
        if trim_next:
            chunk = chunk.lstrip(" \t\r\n")
        if start < 0:
            if chunk:
                parts.append(("text", chunk))
            return parts
        inner = start + 2
        if text.startswith("- ", inner) or text.startswith("-\t", inner) or text.startswith("-\n", inner):
            chunk = chunk.rstrip(" \t\r\n")
            inner += 1
        if chunk:
            parts.append(("text", chunk))
        # Find the closing "}}" outside string literals.
        i = inner
        while True:
            if i >= len(text):
                raise TemplateError("unclosed action")
            c = text[i]
            if c == '"':
                i += 1
                while i < len(text) and text[i] != '"':
                    i += 2 if text[i] == "\\" else 1
                i += 1
                continue
            if c == "`":
                close = text.find("`", i + 1)
                if close < 0:
                    raise TemplateError("unterminated raw quoted string")
                i = close + 1
                continue
            if text.startswith("}}", i):
                break
            i += 1
        end = i
        trim_next = False
        if end - 1 >= inner and text[end - 1] == "-" and end - 2 >= inner and text[end - 2] in " \t\r\n":
            trim_next = True
            end -= 1
        parts.append(("action", text[inner:end]))
        pos = i + 2


# --- parser: nodes become closures data -> value (expressions) or data -> str (lists) -----------

Expr = Callable[[Any], Any]
Render = Callable[[Any], str]


class _Parser:
    def __init__(self, text: str) -> None:
        self.parts = _split(text)
        self.i = 0

    def parse_list(self, stop: tuple[str, ...]) -> tuple[list[Render], str]:
        """Nodes until an action starting with one of `stop` (returned, consumed) or the end."""
        nodes: list[Render] = []
        while self.i < len(self.parts):
            kind, body = self.parts[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(_const(body))
                continue
            stripped = body.strip()
            if stripped.startswith("/*"):
                if not stripped.endswith("*/"):
                    raise TemplateError("unclosed comment")
                continue
            tokens = _tokens(body)
            if not tokens:
                raise TemplateError("missing value for command")
            head = tokens[0][1] if tokens[0][0] == "ident" else ""
            if head in stop:
                return nodes, body
            if head in ("if", "with"):
                nodes.append(self.parse_branch(head, tokens[1:]))
            elif head in ("else", "end"):
                raise TemplateError(f"unexpected {{{{{head}}}}}")
            elif head in ("range", "define", "template", "block", "break", "continue"):
                raise TemplateError(f"{{{{{head}}}}} is not supported")
            else:
                pipe = self.parse_pipeline(tokens)
                nodes.append(_printer(pipe))
        if stop:
            raise TemplateError("unexpected EOF, expected {{end}}")
        return nodes, ""

    def parse_branch(self, head: str, tokens: list[tuple[str, str]]) -> Render:
        if not tokens:
            raise TemplateError(f"missing value for {head}")
        cond = self.parse_pipeline(tokens)
        then, closing = self.parse_list(("else", "end"))
        otherwise: Render | None = None
        if closing.strip().startswith("else"):
            rest = _tokens(closing)[1:]
            if rest and rest[0] == ("ident", "if"):
                otherwise = self.parse_branch("if", rest[1:])  # `else if` closes with the same {{end}}
            elif rest and rest[0] == ("ident", "with"):
                otherwise = self.parse_branch("with", rest[1:])
            elif rest:
                raise TemplateError("unexpected tokens after else")
            else:
                nodes, closing = self.parse_list(("end",))
                otherwise = _join(nodes)
        then_render = _join(then)
        if head == "if":
            def branch(data: Any) -> str:
                if truth(cond(data)):
                    return then_render(data)
                return otherwise(data) if otherwise else ""
        else:
            def branch(data: Any) -> str:
                value = cond(data)
                if truth(value):
                    return then_render(value)
                return otherwise(data) if otherwise else ""
        return branch

    def parse_pipeline(self, tokens: list[tuple[str, str]]) -> Expr:
        if any(kind == "var" for kind, _ in tokens) or ("punct", ":=") in tokens:
            raise TemplateError("template variables are not supported")
        commands: list[list[tuple[str, Any]]] = [[]]
        depth = 0
        for token in tokens:
            if token == ("punct", "|") and depth == 0:
                commands.append([])
                continue
            if token == ("punct", "("):
                depth += 1
            elif token == ("punct", ")"):
                depth -= 1
            commands[-1].append(token)
        stages = [self.parse_command(c) for c in commands]
        if len(stages) == 1:
            return _first(stages[0])

        def pipeline(data: Any) -> Any:
            value = _NO_ARG
            for stage in stages:
                value = stage(data, value)
            return value

        return pipeline

    def parse_operands(self, tokens: list[tuple[str, str]]) -> list[tuple[str, Any]]:
        operands: list[tuple[str, Any]] = []
        i = 0
        while i < len(tokens):
            kind, text = tokens[i]
            if kind == "punct" and text == "(":
                depth, j = 1, i + 1
                while j < len(tokens) and depth:
                    if tokens[j] == ("punct", "("):
                        depth += 1
                    elif tokens[j] == ("punct", ")"):
                        depth -= 1
                    j += 1
                if depth:
                    raise TemplateError("unclosed left paren")
                operands.append(("expr", self.parse_pipeline(tokens[i + 1: j - 1])))
                i = j
                continue
            if kind == "punct":
                raise TemplateError(f"unexpected {text!r} in operand")
            if kind == "ident":
                if text in ("true", "false"):
                    operands.append(("expr", _const(text == "true")))
                elif text == "nil":
                    operands.append(("nil", None))
                elif text in FUNCTIONS or text in ("and", "or"):
                    operands.append(("func", text))
                else:
                    raise TemplateError(f'function "{text}" not defined')
            elif kind in ("str", "raw"):
                value = _unquote(text) if kind == "str" else text[1:-1]
                operands.append(("expr", _const(value)))
            elif kind == "num":
                number = _number(text)
                operands.append(("expr", _const(number)))
            elif kind == "field":
                operands.append(("expr", _field(text[1:].split("."))))
            elif kind == "dot":
                operands.append(("expr", lambda data: data))
            i += 1
        return operands

    def parse_command(self, tokens: list[tuple[str, str]]) -> Callable[[Any, Any], Any]:
        if not tokens:
            raise TemplateError("missing command")
        operands = self.parse_operands(tokens)
        kind, head = operands[0]
        if kind == "nil":
            raise TemplateError("nil is not a command")
        if kind != "func":
            if len(operands) > 1:
                raise TemplateError("can't give argument to non-function")
            expr = head

            def value(data: Any, piped: Any) -> Any:
                if piped is not _NO_ARG:
                    raise TemplateError("can't give argument to non-function")
                return expr(data)

            return value
        args: list[Expr] = []
        for k, operand in operands[1:]:
            if k == "func":
                name = operand
                args.append(_niladic(name))
            elif k == "nil":
                args.append(lambda data: None)
            else:
                args.append(operand)
        name = head
        return lambda data, piped: _call_expr(name, data, args, piped)


def _call_expr(name: str, data: Any, args: list[Expr], piped: Any) -> Any:
    if name in ("and", "or"):
        values: list[Expr] = [*args, (lambda d: piped)] if piped is not _NO_ARG else list(args)
        if not values:
            raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
        value: Any = None
        for arg in values:
            value = arg(data)
            if truth(value) != (name == "and"):
                return value
        return value
    evaluated = [a(data) for a in args]
    if piped is not _NO_ARG:
        evaluated.append(piped)
    return _call(name, evaluated)


def _const(value: Any) -> Expr:
    return lambda data: value


def _printer(pipe: Expr) -> Render:
    return lambda data: to_text(pipe(data))


def _niladic(name: str) -> Expr:
    return lambda data: _call_expr(name, data, [], _NO_ARG)


def _first(stage: Callable[[Any, Any], Any]) -> Expr:
    return lambda data: stage(data, _NO_ARG)


def _number(text: str) -> int | float:
    clean = text.replace("_", "")
    try:
        return int(clean, 0)
    except ValueError:
        return float(clean)


def _field(path: list[str]) -> Expr:
    if len(path) == 1:
        (key,) = path

        def get(data: Any) -> Any:
            if type(data) is dict:
                return data.get(key, MISSING)
            if data is MISSING or data is None:
                return MISSING
            raise TemplateError(f"can't evaluate field {key} in type {type(data).__name__}")

        return get

    def walk(data: Any) -> Any:
        for key in path:
            if type(data) is dict:
                data = data.get(key, MISSING)
            elif data is MISSING or data is None:
                return MISSING
            else:
                raise TemplateError(f"can't evaluate field {key} in type {type(data).__name__}")
        return data

    return walk


def _join(nodes: list[Render]) -> Render:
    if not nodes:
        return lambda data: ""
    if len(nodes) == 1:
        return nodes[0]
    return lambda data: "".join([n(data) for n in nodes])


class Template:
    """A parsed template; `execute(data)` renders it or raises TemplateError."""

    def __init__(self, text: str) -> None:
        self.text = text
        nodes, _ = _Parser(text).parse_list(())
        self._render = _join(nodes)

    def execute(self, data: Any) -> str:
        try:
            return self._render(data)
        except TemplateError:
            raise
        except RecursionError as err:
            raise TemplateError("template too deep") from err
