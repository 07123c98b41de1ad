"""Tests for relay.relabel: Prometheus relabeling semantics.

Many cases are the ones in Prometheus's model/relabel/relabel_test.go, restated here.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay import regexp, relabel
from relay.relabel import RelabelError, Rule, compile_rules, process


def run(labels: dict[str, str], *rules: dict[str, Any]) -> dict[str, str] | None:
    return process(labels, compile_rules(list(rules)))


def replace(src: list[str] | None, regex: str, replacement: str, target: str = "t", **kw: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"regex": regex, "replacement": replacement, "target_label": target, **kw}
    if src is not None:
        rule["source_labels"] = src
    return rule


# --- compile / defaults ------------------------------------------------------------------------


def test_defaults() -> None:
    (rule,) = compile_rules([{"target_label": "x"}])
    assert rule.action == "replace"
    assert rule.separator == ";"
    assert rule.replacement == "$1"
    assert rule.modulus == 0
    assert rule.source_labels == ()
    assert rule.regex.pattern == "^(?s:(.*))$"


def test_none_and_empty_config() -> None:
    assert compile_rules(None) == []
    assert compile_rules([]) == []


def test_default_replace_copies_the_concatenation() -> None:
    # regex (.*), replacement $1, separator ";"; a missing source label counts as "".
    out = run({"a": "x", "b": "y"}, {"source_labels": ["a", "missing", "b"], "target_label": "t"})
    assert out == {"a": "x", "b": "y", "t": "x;;y"}


def test_custom_separator() -> None:
    out = run({"a": "x", "b": "y"}, {"source_labels": ["a", "b"], "separator": "--", "target_label": "t"})
    assert out == {"a": "x", "b": "y", "t": "x--y"}


def test_action_is_case_insensitive() -> None:
    rules = compile_rules(
        [{"action": "LabelDrop", "regex": "a"}, {"action": "KEEP", "source_labels": ["b"], "regex": "y"}]
    )
    assert [r.action for r in rules] == ["labeldrop", "keep"]
    assert process({"a": "x", "b": "y"}, rules) == {"b": "y"}


def test_integer_replacement_is_text() -> None:
    # yaml.v2 decodes `replacement: 1` into "1"; PyYAML hands us the int.
    assert run({}, {"target_label": "t", "replacement": 1, "regex": ""}) == {"t": "1"}


# --- replace -----------------------------------------------------------------------------------


def test_replace_prometheus_cases() -> None:
    base = {"a": "foo", "b": "bar", "c": "baz"}
    assert run(base, replace(["a"], "f(.*)", "ch${1}-ch${1}", "d")) == {**base, "d": "choo-choo"}
    out = run(
        base,
        replace(["a", "b"], "f(.*);(.*)r", "b${1}${2}m", "a"),
        replace(["c", "a"], "(b).*b(.*)ba(.*)", "$1$2$2$3", "d"),
    )
    assert out == {"a": "boobam", "b": "bar", "c": "baz", "d": "boooom"}
    assert run({"a": "abc"}, replace(["a"], ".*(b).*", "$1", "d")) == {"a": "abc", "d": "b"}


def test_replace_no_match_changes_nothing() -> None:
    assert run({"a": "boo"}, replace(["a"], "f", "bar", "b")) == {"a": "boo"}


def test_regex_is_fully_anchored() -> None:
    # "o" occurs in "foo" but does not match it whole.
    assert run({"a": "foo"}, replace(["a"], "o", "hit")) == {"a": "foo"}
    assert run({"a": "foo"}, {"source_labels": ["a"], "regex": "f|o", "action": "drop"}) == {"a": "foo"}
    assert run({"a": "foo"}, {"source_labels": ["a"], "regex": "fo+", "action": "drop"}) is None


def test_dot_matches_newline() -> None:
    assert run({"a": "foo\nbar"}, replace(["a"], "foo.(.*)", "$1")) == {"a": "foo\nbar", "t": "bar"}
    assert run({"a": "x\n"}, {"source_labels": ["a"], "regex": "x", "action": "keep"}) is None  # no $-before-\n


def test_anchors_are_plain_concatenation() -> None:
    # Prometheus wraps the text as ^(?s:<regex>)$, so a regex that closes the group escapes the anchors.
    out = run({"a": "xb"}, replace(["a"], "a)|(b", "[$0|$1]"))
    assert out == {"a": "xb", "t": "[b|b]"}


def test_expansion_forms() -> None:
    regex = "(?P<first>a)(b)(?P<third>c)?"

    def expand(template: str, value: str = "ab") -> str | None:
        out = run({"s": value}, replace(["s"], regex, template))
        assert out is not None
        return out.get("t")

    assert expand("$1-${2}") == "a-b"
    assert expand("$first/${first}") == "a/a"
    assert expand("$0") == "ab"
    assert expand("$$1") == "$1"  # $$ is a literal $
    assert expand("a$$$1") == "a$a"
    assert expand("${1}x") == "ax"
    assert expand("$1x") is None  # the group named "1x": empty, so the label is deleted
    assert expand("$1x_$2") == "b"  # "_" belongs to the name too
    assert expand("$1x-$2") == "-b"
    assert expand("$third") is None  # group did not take part
    assert expand("$third", "abc") == "c"
    assert expand("$9") is None  # no such group
    assert expand("$01") is None  # leading zero: a name, not a number
    assert expand("$1é") is None  # Go's names take Unicode letters too
    assert expand("x$") == "x$"  # malformed references stay as text
    assert expand("$-$1") == "$-a"
    assert expand("${1") == "${1"
    assert expand("${}$2") == "${}b"
    assert expand("${first") == "${first"
    assert expand("no refs") == "no refs"


def test_named_group_not_in_regex_is_empty() -> None:
    out = run({"s": "ab"}, replace(["s"], "(a)(b)", "[$nope]"))
    assert out == {"s": "ab", "t": "[]"}


def test_target_label_is_expanded() -> None:
    rule = replace(["a"], "some-([^-]+)-([^,]+)", "${2}", "${1}")
    assert run({"a": "some-name-value"}, rule) == {"a": "some-name-value", "name": "value"}
    rule = replace(["a"], "(.*)", "v", "x_$1")
    assert run({"a": "b"}, rule) == {"a": "b", "x_b": "v"}


def test_invalid_expanded_target_is_skipped() -> None:
    rule = replace(["a"], "some-([^-]+)-([^,]+)", "${1}", "${3}")  # "${3}" expands to "", invalid
    assert run({"a": "some-name-0"}, rule) == {"a": "some-name-0"}
    rule = replace(["a"], "(.*)", "v", "$1")
    assert run({"a": "9lives"}, rule) == {"a": "9lives"}
    assert run({"a": "has-dash"}, rule) == {"a": "has-dash"}
    # Skipped, not deleted: an existing label survives even when the value would be empty.
    assert run({"a": "9", "t": "keep"}, replace(["missing"], "(.*)", "", "$1")) == {"a": "9", "t": "keep"}


def test_empty_result_deletes_target() -> None:
    assert run({"a": "foo", "t": "old"}, replace(["b"], "(.*)", "$1")) == {"a": "foo"}
    rule = replace(["a"], "some-([^-]+)-([^,]+)", "${3}", "${1}")
    assert run({"a": "some-name-value"}, rule) == {"a": "some-name-value"}


def test_replace_overwrites_and_later_rules_see_it() -> None:
    out = run(
        {"__meta_kubernetes_pod_container_port_name": "foo", "__meta_port": "9091"},
        {"regex": "__meta_kubernetes_pod_container_port_name", "action": "labeldrop"},
        replace(["__meta_port"], "(.+)", "metrics", "__meta_kubernetes_pod_container_port_name"),
        {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "metrics", "action": "keep"},
    )
    assert out == {"__meta_port": "9091", "__meta_kubernetes_pod_container_port_name": "metrics"}


def test_real_life_tags() -> None:
    tags = "path:/secret,job:some-job,label:foo=bar"
    out = run(
        {"__meta_sd_tags": tags},
        replace(["__meta_sd_tags"], "(?:.+,|^)path:(/[^,]+).*", "${1}", "__metrics_path__"),
        replace(["__meta_sd_tags"], "(?:.+,|^)job:([^,]+).*", "${1}", "job"),
        replace(["__meta_sd_tags"], "(?:.+,|^)label:([^=]+)=([^,]+).*", "${2}", "${1}"),
    )
    assert out == {"__meta_sd_tags": tags, "__metrics_path__": "/secret", "job": "some-job", "foo": "bar"}


# --- keep / drop / keepequal / dropequal -------------------------------------------------------


def test_keep_and_drop() -> None:
    assert run({"a": "foo"}, {"source_labels": ["a"], "regex": "f.*", "action": "keep"}) == {"a": "foo"}
    assert run({"a": "foo"}, {"source_labels": ["a"], "regex": "no-match", "action": "keep"}) is None
    assert run({"a": "foo"}, {"source_labels": ["a"], "regex": ".*o.*", "action": "drop"}) is None
    assert run({"a": "foo"}, {"source_labels": ["a"], "regex": "no-match", "action": "drop"}) == {"a": "foo"}


def test_drop_stops_later_rules() -> None:
    out = run(
        {"a": "foo"},
        {"source_labels": ["a"], "regex": ".*o.*", "action": "drop"},
        replace(["a"], "f(.*)", "ch$1-ch$1", "d"),
    )
    assert out is None


def test_keep_missing_label_matches_empty() -> None:
    assert run({"a": "x"}, {"source_labels": ["b"], "regex": "", "action": "keep"}) == {"a": "x"}
    assert run({"a": "x"}, {"source_labels": ["b"], "regex": ".+", "action": "keep"}) is None


def test_keepequal_dropequal() -> None:
    base = {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"}
    assert run(base, {"source_labels": ["__tmp_port"], "action": "keepequal", "target_label": "__port1"}) == base
    assert run(base, {"source_labels": ["__tmp_port"], "action": "keepequal", "target_label": "__port2"}) is None
    assert run(base, {"source_labels": ["__tmp_port"], "action": "dropequal", "target_label": "__port1"}) is None
    assert run(base, {"source_labels": ["__tmp_port"], "action": "dropequal", "target_label": "__port2"}) == base
    # A missing target equals an empty concatenation.
    assert run({"a": "1"}, {"source_labels": ["b"], "action": "keepequal", "target_label": "c"}) == {"a": "1"}


# --- hashmod -----------------------------------------------------------------------------------


def _prometheus_hashmod(value: str, modulus: int) -> int:
    # Independent restatement: md5, last 8 bytes as a big-endian uint64, mod modulus.
    digest = hashlib.md5(value.encode()).digest()
    return int.from_bytes(digest[-8:], byteorder="big") % modulus


def test_hashmod_matches_prometheus_vectors() -> None:
    # Vectors from Prometheus's relabel_test.go: "baz" % 1000 -> "976", "foo\nbar" % 1000 -> "734".
    base = {"a": "foo", "b": "bar", "c": "baz"}
    out = run(base, {"source_labels": ["c"], "target_label": "d", "action": "hashmod", "modulus": 1000})
    assert out == {**base, "d": "976"}
    out = run({"a": "foo\nbar"}, {"source_labels": ["a"], "target_label": "b", "action": "hashmod", "modulus": 1000})
    assert out == {"a": "foo\nbar", "b": "734"}
    assert _prometheus_hashmod("baz", 1000) == 976
    assert _prometheus_hashmod("foo\nbar", 1000) == 734
    # The first 8 bytes (the pre-2.x reading) would give something else, so the test can tell.
    assert int.from_bytes(hashlib.md5(b"baz").digest()[:8], "big") % 1000 != 976


@pytest.mark.parametrize("value", ["", "x", "über;ß", "a" * 300])
@pytest.mark.parametrize("modulus", [1, 7, 1000, 2**64 - 1])
def test_hashmod_values(value: str, modulus: int) -> None:
    rule = {"source_labels": ["v"], "target_label": "h", "action": "hashmod", "modulus": modulus}
    out = run({"v": value} if value else {}, rule)
    assert out is not None
    assert out["h"] == str(_prometheus_hashmod(value, modulus))


# --- labelmap / labeldrop / labelkeep ----------------------------------------------------------


def test_labelmap() -> None:
    base = {"a": "foo", "b1": "bar", "b2": "baz"}
    out = run(base, {"regex": "(b.*)", "replacement": "bar_${1}", "action": "labelmap"})
    assert out == {**base, "bar_b1": "bar", "bar_b2": "baz"}
    meta = {"a": "foo", "__meta_my_bar": "aaa", "__meta_my_baz": "bbb", "__meta_other": "ccc"}
    out = run(meta, {"regex": "__meta_(my.*)", "replacement": "${1}", "action": "labelmap"})
    assert out == {**meta, "my_bar": "aaa", "my_baz": "bbb"}


def test_labelmap_default_replacement_and_snapshot() -> None:
    # New names are not fed back into the same rule: no x_x_a.
    assert run({"a": "1"}, {"regex": "(.*)", "replacement": "x_$1", "action": "labelmap"}) == {"a": "1", "x_a": "1"}
    assert run({"k_a": "1"}, {"regex": "k_(.*)", "action": "labelmap"}) == {"k_a": "1", "a": "1"}


def test_labelmap_collision_follows_go_builder_order() -> None:
    rule = {"regex": "(?:a|b)_(x)", "action": "labelmap"}
    # Input labels are visited sorted by name whatever the dict order: b_x comes last and wins.
    assert run({"b_x": "2", "a_x": "1"}, rule) == {"a_x": "1", "b_x": "2", "x": "2"}
    # Labels set by earlier rules are visited after untouched ones, in the order they were set.
    out = run({"a_x": "1", "b_x": "2"}, replace(None, "", "9", "a_x"), rule)
    assert out == {"a_x": "9", "b_x": "2", "x": "9"}


def test_labelmap_replace_all_when_regex_escapes_anchors() -> None:
    # ^(?s:a)|(b)$ finds only the trailing "b" of "xb"; Go's ReplaceAllString keeps the "x".
    out = run({"xb": "1"}, {"regex": "a)|(b", "replacement": "y", "action": "labelmap"})
    assert out == {"xb": "1", "xy": "1"}
    out = run({"xb": "1"}, {"regex": "a)|(b", "replacement": "y$1", "action": "labelmap"})
    assert out == {"xb": "1", "xyb": "1"}


def test_labeldrop_labelkeep() -> None:
    base = {"a": "foo", "b1": "bar", "b2": "baz"}
    assert run(base, {"regex": "(b.*)", "action": "labelkeep"}) == {"b1": "bar", "b2": "baz"}
    assert run(base, {"regex": "(b.*)", "action": "labeldrop"}) == {"a": "foo"}
    assert run(base, {"regex": "b", "action": "labeldrop"}) == base  # anchored: "b" is not "b1"


def test_labelkeep_then_set_again() -> None:
    out = run({"a": "1", "b": "2"}, {"regex": "a", "action": "labelkeep"}, replace(["a"], "(.*)", "$1", "b"))
    assert out == {"a": "1", "b": "1"}


# --- lowercase / uppercase ---------------------------------------------------------------------


def test_lowercase_uppercase() -> None:
    out = run(
        {"foo": "bAr123Foo"},
        {"source_labels": ["foo"], "action": "uppercase", "target_label": "foo_uppercase"},
        {"source_labels": ["foo"], "action": "lowercase", "target_label": "foo_lowercase"},
    )
    assert out == {"foo": "bAr123Foo", "foo_lowercase": "bar123foo", "foo_uppercase": "BAR123FOO"}


@pytest.mark.parametrize(
    ("value", "lower", "upper"),
    [
        ("ΟΔΟΣ", "οδοσ", "ΟΔΟΣ"),  # Go has no final-sigma rule: σ, not ς
        ("straße", "straße", "STRAßE"),  # no ß -> SS
        ("İx", "ix", "İX"),  # simple mapping: İ -> i, not i + combining dot
        ("ﬀ", "ﬀ", "ﬀ"),  # ligature has no simple uppercase
        ("ᾳ", "ᾳ", "ᾼ"),  # ypogegrammeni: simple uppercase is the titlecase letter
        ("Ünïcödé", "ünïcödé", "ÜNÏCÖDÉ"),
    ],
)
def test_case_mapping_is_go_simple_mapping(value: str, lower: str, upper: str) -> None:
    out = run(
        {"v": value},
        {"source_labels": ["v"], "action": "lowercase", "target_label": "lo"},
        {"source_labels": ["v"], "action": "uppercase", "target_label": "up"},
    )
    assert out == {"v": value, "lo": lower, "up": upper}


def test_lowercase_of_empty_deletes_target() -> None:
    assert run({"t": "X"}, {"source_labels": ["missing"], "action": "lowercase", "target_label": "t"}) == {}


# --- general -----------------------------------------------------------------------------------


def test_input_not_mutated_and_result_is_new() -> None:
    labels = {"a": "foo", "b": "bar"}
    rules = compile_rules([{"regex": "b", "action": "labeldrop"}, replace(["a"], "(.*)", "$1", "c")])
    out = process(labels, rules)
    assert labels == {"a": "foo", "b": "bar"}
    assert out == {"a": "foo", "c": "foo"}
    out2 = process(labels, [])
    assert out2 == labels and out2 is not labels


def test_empty_values_are_absent() -> None:
    # labels.Builder treats an empty value as a missing label, so it never reaches the output.
    assert process({"a": "", "b": "x"}, []) == {"b": "x"}
    assert run({"a": ""}, {"source_labels": ["a"], "regex": "", "action": "keep"}) == {}


def test_lone_surrogates_become_replacement_char() -> None:
    out = run({"a": "x\ud800"}, replace(["a"], "x(.)", "$1", "b"))
    assert out == {"a": "x\ufffd", "b": "\ufffd"}


def test_rule_is_frozen() -> None:
    (rule,) = compile_rules([{"target_label": "x"}])
    with pytest.raises(AttributeError):
        rule.action = "drop"  # type: ignore[misc]


def test_rule_rejects_unknown_action() -> None:
    (rule,) = compile_rules([{"target_label": "x"}])
    with pytest.raises(ValueError, match="unknown relabel action"):
        Rule(rule.source_labels, rule.separator, rule.regex, 0, "x", "$1", "frobnicate")


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"action": None}, "relabel action cannot be empty"),
        ({"action": "frobnicate"}, "unknown relabel action 'frobnicate'"),
        ({"action": ""}, "unknown relabel action ''"),
        ({"action": "hashmod", "target_label": "h"}, "hashmod requires non-zero modulus"),
        ({"action": "hashmod", "target_label": "h", "modulus": 0}, "hashmod requires non-zero modulus"),
        ({"action": "replace"}, "replace action requires 'target_label' value"),
        ({"action": "hashmod", "modulus": 2}, "hashmod action requires 'target_label' value"),
        ({"action": "lowercase"}, "lowercase action requires 'target_label' value"),
        ({"action": "uppercase"}, "uppercase action requires 'target_label' value"),
        ({"action": "keepequal"}, "keepequal action requires 'target_label' value"),
        ({"action": "dropequal"}, "dropequal action requires 'target_label' value"),
        ({"target_label": "-foo"}, "'-foo' is invalid 'target_label' for replace action"),
        ({"target_label": "0${3}"}, "'0${3}' is invalid 'target_label' for replace action"),
        ({"target_label": "-${3}"}, "'-${3}' is invalid 'target_label' for replace action"),
        ({"target_label": "foo${"}, "'foo${' is invalid 'target_label' for replace action"),
        ({"target_label": "${}"}, "'${}' is invalid 'target_label' for replace action"),
        ({"target_label": "a$$b"}, "'a$$b' is invalid 'target_label' for replace action"),
        ({"action": "lowercase", "target_label": "${3}"}, "'${3}' is invalid 'target_label' for lowercase action"),
        ({"action": "uppercase", "target_label": "a-b"}, "'a-b' is invalid 'target_label' for uppercase action"),
        ({"action": "keepequal", "target_label": "1a"}, "'1a' is invalid 'target_label' for keepequal action"),
        ({"action": "lowercase", "target_label": "t", "replacement": "x"}, "can not be set for lowercase action"),
        ({"action": "dropequal", "target_label": "t", "replacement": "x"}, "can not be set for dropequal action"),
        ({"action": "labelmap", "replacement": "-$1"}, "'-$1' is invalid 'replacement' for labelmap action"),
        ({"action": "labelmap", "replacement": ""}, "'' is invalid 'replacement' for labelmap action"),
        ({"action": "hashmod", "modulus": 3, "target_label": "$1"}, "'$1' is invalid 'target_label' for hashmod"),
        # Any explicit regex, even the default text: Prometheus compares the compiled regex by identity.
        ({"action": "keepequal", "target_label": "t", "regex": "(.*)"}, "keepequal action requires only"),
        ({"action": "keepequal", "target_label": "t", "modulus": 4}, "keepequal action requires only"),
        ({"action": "dropequal", "target_label": "t", "separator": ","}, "dropequal action requires only"),
        ({"action": "labeldrop", "source_labels": ["a"]}, "labeldrop action requires only 'regex', and no other"),
        ({"action": "labeldrop", "source_labels": []}, "labeldrop action requires only 'regex'"),
        ({"action": "labelkeep", "target_label": "a"}, "labelkeep action requires only 'regex'"),
        ({"action": "labelkeep", "modulus": 1}, "labelkeep action requires only 'regex'"),
        ({"action": "labelkeep", "separator": ","}, "labelkeep action requires only 'regex'"),
        ({"action": "labelkeep", "replacement": "x"}, "labelkeep action requires only 'regex'"),
        ({"target_label": "t", "regex": "("}, "invalid regex '('"),
        ({"target_label": "t", "regex": "a{1001}"}, "invalid regex"),
        ({"target_label": "t", "source_labels": ["a-b"]}, "'a-b' is not a valid label name"),
        ({"target_label": "t", "source_labels": "a"}, "'source_labels' must be a list"),
        ({"target_label": "t", "source_labels": [True]}, "'source_labels' must be a string"),
        ({"target_label": "t", "modulus": -1}, "'modulus' must be an integer"),
        ({"target_label": "t", "modulus": "5"}, "'modulus' must be an integer"),
        ({"target_label": "t", "modulus": True}, "'modulus' must be an integer"),
        ({"target_label": "t", "modulus": 2**64}, "'modulus' must be an integer"),
        ({"target_label": "t", "separator": 1.5}, "'separator' must be a string"),
        ({"target_label": "t", "targetlabel": "x"}, "unknown key 'targetlabel'"),
    ],
)
def test_validation_errors(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(RelabelError, match="^relabel rule 1: ") as info:
        compile_rules([rule])
    assert message in str(info.value)


@pytest.mark.parametrize(
    "rule",
    [
        {"target_label": "${3}"},
        {"target_label": "label${1}"},
        {"target_label": "_${1}_"},
        {"target_label": "foo${bar}foo"},
        {"target_label": "asd$2asd"},
        {"action": "labelmap", "replacement": "x_${1}"},
        {"action": "labeldrop", "regex": "a", "source_labels": None},
        {"action": "labelkeep", "regex": "a", "separator": ";", "replacement": "$1", "modulus": 0},
        {"action": "keepequal", "target_label": "t", "source_labels": ["a"], "separator": ";"},
        {"action": "lowercase", "target_label": "t", "replacement": "$1"},
    ],
)
def test_valid_configs(rule: dict[str, Any]) -> None:
    assert len(compile_rules([rule])) == 1


def test_error_names_the_failing_rule() -> None:
    with pytest.raises(RelabelError, match=r"^relabel rule 2: unknown key 'bogus'"):
        compile_rules([{"target_label": "ok"}, {"bogus": 1}])
    with pytest.raises(RelabelError, match="^relabel rule 1: expected a mapping"):
        compile_rules(["action: keep"])  # type: ignore[list-item]
    with pytest.raises(RelabelError, match="must be a list"):
        compile_rules({"action": "keep"})  # type: ignore[arg-type]


def test_invalid_unicode_in_config() -> None:
    with pytest.raises(RelabelError, match="^relabel rule 1: text is not valid Unicode"):
        compile_rules([{"target_label": "t", "replacement": "x\ud800"}])


def test_null_values_are_go_zero_values() -> None:
    # yaml.v2 sets a field to its zero value for an explicit null.
    (rule,) = compile_rules([{"target_label": "t", "separator": None, "replacement": None, "regex": None}])
    assert (rule.separator, rule.replacement, rule.regex.pattern) == ("", "", "^(?s:)$")
    # regex: null matches only "" and replacement "" deletes: so "t" goes for an empty value.
    assert process({"t": "x"}, [rule]) == {}
    rules = compile_rules([{"source_labels": ["s"], "regex": None, "target_label": "t"}])
    assert process({"t": "x", "s": "y"}, rules) == {"t": "x", "s": "y"}


# --- properties --------------------------------------------------------------------------------

names = st.text(min_size=1, max_size=12)
label_sets = st.dictionaries(names, st.text(max_size=12), max_size=8)
# Includes lone surrogates, which JSON input can carry.
wild_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=10)
wild_label_sets = st.dictionaries(wild_text, wild_text, max_size=6)

EVERY_ACTION = compile_rules(
    [
        {"source_labels": ["a", "b"], "regex": "(.)(.*)", "replacement": "$2${1}x", "target_label": "r_$1"},
        {"source_labels": ["a"], "regex": "(?P<n>.*)", "replacement": "$n$$", "target_label": "named"},
        {"source_labels": ["b"], "action": "lowercase", "target_label": "lo"},
        {"source_labels": ["a"], "action": "uppercase", "target_label": "up"},
        {"source_labels": ["a", "b"], "action": "hashmod", "modulus": 97, "target_label": "h"},
        {"regex": "(.)(.*)", "replacement": "m_${2}", "action": "labelmap"},
        {"regex": "a)|(b", "replacement": "q$1", "action": "labelmap"},
        {"regex": "zz.*", "action": "labeldrop"},
        {"regex": ".*", "action": "labelkeep"},
        {"source_labels": ["c"], "regex": "never", "action": "drop"},
        {"source_labels": ["d"], "action": "dropequal", "target_label": "never_set"},
    ]
)


@settings(max_examples=300)
@given(label_sets)
def test_labelkeep_everything_is_identity(labels: dict[str, str]) -> None:
    out = run(labels, {"regex": ".*", "action": "labelkeep"})
    assert out == {k: v for k, v in labels.items() if v}


@settings(max_examples=300)
@given(label_sets, st.sampled_from(["a.*", ".", "(?i)B.*", ".*_.*"]))
def test_labelkeep_and_labeldrop_partition(labels: dict[str, str], regex: str) -> None:
    kept = run(labels, {"regex": regex, "action": "labelkeep"})
    dropped = run(labels, {"regex": regex, "action": "labeldrop"})
    assert kept is not None and dropped is not None
    assert kept.keys().isdisjoint(dropped.keys())
    assert {**kept, **dropped} == {k: v for k, v in labels.items() if v}


@settings(max_examples=300)
@given(wild_label_sets)
def test_process_never_raises_nor_mutates(labels: dict[str, str]) -> None:
    before = dict(labels)
    out = process(labels, EVERY_ACTION)
    assert labels == before
    if out is not None:
        assert all(v for v in out.values())  # empty values are never kept


@settings(max_examples=200)
@given(label_sets, st.text(alphabet="ab$_{}1x", max_size=8))
def test_replacement_without_groups_is_literal(labels: dict[str, str], literal: str) -> None:
    # A replacement with no "$" is copied verbatim whenever the regex matches.
    literal = literal.replace("$", "")
    out = run(labels, replace(None, "(.*)", literal, "t"))
    assert out is not None
    assert out.get("t") == (literal or None)


# The fast span search uses google-re2 internals; it must agree with the public API, and the
# public fallback must give the same results end to end.
FINDER_REGEXES = ["(.*)", "a)|(b", "(?P<x>é+)?(.)", "(a*)|b", "x|", "(?i)(É)(.*)"]


@settings(max_examples=300)
@given(st.sampled_from(FINDER_REGEXES), st.text(alphabet="abxÉé\n", max_size=8), st.integers(0, 10))
def test_fast_finder_agrees_with_public_search(regex: str, value: str, pos: int) -> None:
    compiled = regexp.compile_regex(regex, anchored=True)
    text = value.encode()
    pos = min(pos, len(text))
    assert regexp.span_finder(compiled)(text, pos) == regexp.public_finder(compiled)(text, pos)


@settings(max_examples=200)
@given(label_sets)
def test_public_finder_fallback_gives_same_results(labels: dict[str, str]) -> None:
    raw = [
        {"source_labels": ["a", "b"], "regex": "(.)(.*)", "replacement": "$2${1}x", "target_label": "r_$1"},
        {"regex": "(.)(.*)", "replacement": "m_${2}", "action": "labelmap"},
        {"regex": "a)|(b", "replacement": "q$1", "action": "labelmap"},
        {"regex": "m_.*", "action": "labeldrop"},
    ]
    fast = compile_rules(raw)
    with pytest.MonkeyPatch.context() as patch:  # not the fixture: hypothesis runs this body many times
        patch.setattr(relabel, "span_finder", regexp.public_finder)
        slow = compile_rules(raw)
    assert [r._find.__qualname__ for r in slow] == ["public_finder.<locals>.find"] * len(raw)
    assert process(labels, slow) == process(labels, fast)
