"""House rules: which ones are checked in code, and their verdicts."""
from __future__ import annotations

import pytest

from shared_code.house_rules import (MAX_RULE_CHARS, MAX_RULES, check_in_code, parse_rule_lines, rule_of,
                                     sentence_around)


@pytest.mark.parametrize("text, kind, limit, strict, words", [
    ("under 600 words", "words_at_most", 600, True, ()),
    ("At most 1,200 words.", "words_at_most", 1200, False, ()),
    ("no more than 50 characters", "chars_at_most", 50, False, ()),
    ("at least 100 words", "words_at_least", 100, False, ()),
    ("forbidden words: leverage, synergy", "forbidden", 0, False, ("leverage", "synergy")),
    ('avoid "game changer" or "disrupt"', "forbidden", 0, False, ("game changer", "disrupt")),
    ('no "utilize"', "forbidden", 0, False, ("utilize",)),
    ("no claims without a source", "model", 0, False, ()),
    ("ends with a call to action", "model", 0, False, ()),
    ("under budget", "model", 0, False, ()),
])
def test_a_rule_is_checked_in_code_only_when_it_says_so_plainly(text, kind, limit, strict, words):
    rule = rule_of(text)
    assert (rule.kind, rule.limit, rule.strict, rule.words) == (kind, limit, strict, words)


@pytest.mark.parametrize("rule, content, verdict, reason", [
    ("under 5 words", "one two three four", "pass", "4 words"),
    ("under 5 words", "one two three four five", "fail", "5 words"),
    ("at most 5 words", "one two three four five", "pass", "5 words"),
    ("at least 3 words", "one two", "fail", "2 words"),
    ("under 10 characters", "123456789", "pass", "9 characters"),
    ("forbidden words: leverage", "We leverage it. Then stop.", "fail", 'uses "leverage"'),
    ("forbidden words: leverage", "Leveraged buyouts are not it.", "pass", "none of the words is used"),
])
def test_rules_checked_in_code(rule, content, verdict, reason):
    result = check_in_code(rule_of(rule), {"title": "t", "content": content})
    assert (result["verdict"], result["reason"], result["by"]) == (verdict, reason, "code")


def test_a_forbidden_word_shows_the_sentence_it_is_in():
    result = check_in_code(rule_of('no "synergy"'), {"content": "First one. The synergy is real! Last."})
    assert result["passage"] == "The synergy is real!"


def test_a_rule_for_the_model_has_no_verdict_in_code():
    assert check_in_code(rule_of("ends with a call to action"), {"content": "x"}) is None


def test_rules_are_listed_one_a_line_or_separated_by_semicolons():
    assert parse_rule_lines("# house style\nunder 600 words\n\n; no claims without a source;", "X") == [
        "under 600 words", "no claims without a source"]


def test_too_many_or_too_long_rules_are_refused_naming_the_setting():
    with pytest.raises(ValueError, match=f"HITL_HOUSE_RULES lists {MAX_RULES + 1} house rules"):
        parse_rule_lines(";".join(f"rule {n}" for n in range(MAX_RULES + 1)), "HITL_HOUSE_RULES")
    with pytest.raises(ValueError, match=f"at most {MAX_RULE_CHARS}"):
        parse_rule_lines("x" * (MAX_RULE_CHARS + 1), "HITL_HOUSE_RULES")


def test_the_sentence_around_a_position():
    text = "One. Two words here? Three"
    assert sentence_around(text, text.index("words")) == "Two words here?"
    assert sentence_around(text, len(text) - 1) == "Three"


def test_the_rules_file_comes_first_then_the_setting_and_a_bad_file_is_refused_naming_it(tmp_path):
    from shared_code.settings import ConfigurationError, load_settings

    rules = tmp_path / "house-rules.txt"
    rules.write_text("# the house style\nunder 600 words\nforbidden words: leverage\n", encoding="utf-8")
    settings = load_settings({"HITL_HOUSE_RULES_FILE": str(rules), "HITL_HOUSE_RULES": "no claims without a source"})
    assert settings.house_rules == ("under 600 words", "forbidden words: leverage", "no claims without a source")
    assert load_settings({"HITL_HOUSE_RULES_FILE": str(rules)}).house_rules == (
        "under 600 words", "forbidden words: leverage")
    with pytest.raises(ConfigurationError, match=r"HITL_HOUSE_RULES_FILE: cannot read .*missing\.txt"):
        load_settings({"HITL_HOUSE_RULES_FILE": str(tmp_path / "missing.txt")})
    (tmp_path / "latin1.txt").write_bytes("sans caf\xe9".encode("latin-1"))
    with pytest.raises(ConfigurationError, match="not UTF-8 text"):
        load_settings({"HITL_HOUSE_RULES_FILE": str(tmp_path / "latin1.txt")})
    rules.write_text("\n".join(f"rule {n}" for n in range(MAX_RULES)), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="HITL_HOUSE_RULES_FILE and HITL_HOUSE_RULES together"):
        load_settings({"HITL_HOUSE_RULES_FILE": str(rules), "HITL_HOUSE_RULES": "one more"})
