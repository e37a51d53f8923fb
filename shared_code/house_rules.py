"""A deployment's house rules, and the ones that are checked in code.

House rules are short items a team wants every draft to meet ("no claims without a
source", "ends with a call to action", "under 600 words"). After each draft a checker
rates the draft against each rule: pass, fail or unsure, with a one-line reason and the
passage concerned. It informs the reviewer; it never decides.

Rules about length and forbidden words need no model and are checked here, exactly:

- ``under N words`` (fewer than N), ``at most N words`` / ``no more than N words``,
  ``at least N words``; the same with ``characters``;
- ``forbidden words: leverage, synergy`` / ``banned words: …``, and ``no "leverage"`` /
  ``avoid "leverage" or "synergy"`` / ``never use "…"`` (the words in quotes).

Every other rule is for a model (activities/checker_backends.py). Pure: no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

MAX_RULES = 12
MAX_RULE_CHARS = 160
MAX_REASON_CHARS = 200
MAX_PASSAGE_CHARS = 300
VERDICTS = ("pass", "fail", "unsure")
NOT_CHECKED = "not_checked"

_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d{1,7})"
_AT_MOST = re.compile(rf"^(under|fewer than|less than|at most|no more than|max(?:imum)?)\s+{_NUMBER}\s+"
                      r"(words?|characters?|chars?)\.?$", re.I)
_AT_LEAST = re.compile(rf"^(at least|min(?:imum)?|no fewer than|over|more than)\s+{_NUMBER}\s+"
                       r"(words?|characters?|chars?)\.?$", re.I)
_LISTED = re.compile(r"^(?:forbidden|banned) words?\s*:\s*(.+)$", re.I)
_QUOTED = re.compile(r"^(?:no|never use|never say|avoid|do not use|don't use)\s+((?:\"[^\"]+\"[\s,]*(?:or|and)?\s*)+)\.?$",
                     re.I)
_IN_QUOTES = re.compile(r"\"([^\"]+)\"")
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class HouseRule:
    text: str
    kind: str = "model"          # words_at_most, words_at_least, chars_at_most, chars_at_least, forbidden, model
    limit: int = 0
    strict: bool = False         # "under N": fewer than N, not N itself
    words: tuple = ()


def rule_of(text: str) -> HouseRule:
    """The rule a line of text states: one checked in code when it says so plainly, else a
    rule for the model."""
    text = " ".join(text.split())
    for pattern, bound in ((_AT_MOST, "at_most"), (_AT_LEAST, "at_least")):
        match = pattern.match(text)
        if match:
            unit = "words" if match.group(3).lower().startswith("word") else "chars"
            limit = int(match.group(2).replace(",", ""))
            strict = match.group(1).lower() in ("under", "fewer than", "less than", "over", "more than")
            return HouseRule(text, f"{unit}_{bound}", limit, strict)
    listed = _LISTED.match(text)
    if listed:
        words = tuple(w.strip(" \"'.") for w in re.split(r",|\bor\b|\band\b", listed.group(1)) if w.strip(" \"'."))
        if words:
            return HouseRule(text, "forbidden", words=words)
    quoted = _QUOTED.match(text)
    if quoted:
        return HouseRule(text, "forbidden", words=tuple(_IN_QUOTES.findall(quoted.group(1))))
    return HouseRule(text)


def rules_of(lines: Iterable[str]) -> tuple[HouseRule, ...]:
    return tuple(rule_of(line) for line in lines)


def parse_rule_lines(text: str, where: str) -> list[str]:
    """The rules a setting or a file lists: one per line (or separated by ';'), blank
    lines and lines starting with '#' left out; ValueError naming ``where`` when there are
    too many or one is too long."""
    rules = []
    for line in re.split(r"[;\n]", text):
        line = " ".join(line.split())
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_RULE_CHARS:
            raise ValueError(f"{where}: the rule {line[:40]!r}… is {len(line)} characters long; "
                             f"at most {MAX_RULE_CHARS} are allowed")
        rules.append(line)
    if len(rules) > MAX_RULES:
        raise ValueError(f"{where} lists {len(rules)} house rules; at most {MAX_RULES} are allowed")
    return rules


def verdict(rule: str, outcome: str, reason: str, passage: str = "", by: str = "code") -> dict:
    """One rule's result as the review keeps it."""
    return {"rule": rule, "verdict": outcome, "reason": _cut(reason, MAX_REASON_CHARS),
            "passage": _cut(passage, MAX_PASSAGE_CHARS), "by": by}


def check_in_code(rule: HouseRule, draft: dict) -> Optional[dict]:
    """The verdict on a rule that needs no model; None for a rule that does."""
    content = str(draft.get("content") or "")
    if rule.kind in ("words_at_most", "words_at_least"):
        return _bound(rule, len(_WORD.findall(content)), "words")
    if rule.kind in ("chars_at_most", "chars_at_least"):
        return _bound(rule, len(content), "characters")
    if rule.kind == "forbidden":
        for word in rule.words:
            found = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", content, re.I)
            if found:
                return verdict(rule.text, "fail", f"uses \"{word}\"", sentence_around(content, found.start()))
        return verdict(rule.text, "pass", "none of the words is used")
    return None


def _bound(rule: HouseRule, count: int, unit: str) -> dict:
    if rule.kind.endswith("at_most"):
        met = count < rule.limit if rule.strict else count <= rule.limit
    else:
        met = count > rule.limit if rule.strict else count >= rule.limit
    return verdict(rule.text, "pass" if met else "fail", f"{count:,} {unit}")


def sentence_around(text: str, at: int) -> str:
    """The sentence of ``text`` that holds position ``at``."""
    start = 0
    for boundary in _SENTENCE_END.finditer(text):
        if boundary.start() >= at:
            return text[start:boundary.start()].strip()
        start = boundary.end()
    return text[start:].strip()


def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
