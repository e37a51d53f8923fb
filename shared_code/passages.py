"""Where a reviewer's comment points in a draft: whether its quote occurs in the draft, and
what became of it in the next one (unchanged, changed, or gone).

A reviewer selects words on the review page, which shows the draft rendered from
Markdown, so a quote is the rendered text: "Durable timers" where the draft says
"**Durable** timers", one space where the source broke the line, no list marker or link
address. Both sides are compared in that plain form. Pure: the routes check a decision's
quotes with it, the review checks them again, and the writer's activity says what became
of each quote in its new draft.
"""
from __future__ import annotations

import difflib
import re
from typing import Iterable, Optional

from .models import MAX_COMMENTS_PER_REVIEW

UNCHANGED, CHANGED, GONE = "unchanged", "changed", "gone"
# A quote the new draft no longer holds word for word counts as changed (rather than gone)
# when a run of at least this share of its words, and at least two, is still there.
KEPT_SHARE = 0.4

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_LIST_MARKER = re.compile(r"^[ \t]*(?:[-+*]|\d{1,9}[.)])[ \t]+", re.M)
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+", re.M)
_MARKUP = re.compile(r"[*_`~>\\]")
_SPACE = re.compile(r"\s+")


def plain(text: str) -> str:
    """Text as a reader of the rendered Markdown sees it, spacing folded."""
    text = _LINK.sub(r"\1", text or "")
    text = _HEADING.sub("", _LIST_MARKER.sub("", text))
    return _SPACE.sub(" ", _MARKUP.sub("", text)).strip()


def draft_text(draft: Optional[dict]) -> str:
    """The title and the content of a draft, as one plain text."""
    if not isinstance(draft, dict):
        return ""
    return f"{plain(str(draft.get('title') or ''))}\n{plain(str(draft.get('content') or ''))}"


def quote_found(quote: str, draft: Optional[dict]) -> bool:
    wanted = plain(quote)
    return bool(wanted) and wanted in draft_text(draft)


def missing_quote(comments: Iterable[dict], draft: Optional[dict]) -> Optional[int]:
    """The number (from 1) of the first comment whose quote the draft does not hold."""
    text = draft_text(draft)
    for number, comment in enumerate(comments, 1):
        wanted = plain(comment.get("quote", ""))
        if not wanted or wanted not in text:
            return number
    return None


def quote_state(quote: str, draft: Optional[dict]) -> str:
    """What became of a quoted passage in a later draft: UNCHANGED (still there word for
    word), CHANGED (partly there) or GONE."""
    if quote_found(quote, draft):
        return UNCHANGED
    words, text_words = plain(quote).split(" "), draft_text(draft).split()
    if len(words) < 2 or not text_words:
        return GONE
    matcher = difflib.SequenceMatcher(a=words, b=text_words, autojunk=False)
    kept = matcher.find_longest_match(0, len(words), 0, len(text_words)).size
    return CHANGED if kept >= 2 and kept >= KEPT_SHARE * len(words) else GONE


def too_many_comments(held: int, new: int) -> Optional[str]:
    """Why a review that holds ``held`` comments cannot take ``new`` more; None when it can."""
    if held + new > MAX_COMMENTS_PER_REVIEW:
        return (f"this review holds {held} comments on passages and takes at most {MAX_COMMENTS_PER_REVIEW} "
                "in all: say the rest in the feedback")
    return None
