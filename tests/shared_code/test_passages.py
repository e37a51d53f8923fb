"""Where a comment's quote is in a draft: the rendered words a reviewer selects, found in
the Markdown the writer wrote, and what became of them in the next draft."""
from __future__ import annotations

import pytest

from shared_code.models import MAX_COMMENTS_PER_REVIEW
from shared_code.passages import CHANGED, GONE, UNCHANGED, missing_quote, plain, quote_found, quote_state, \
    too_many_comments

DRAFT = {"title": "Durable **timers**",
         "content": "A *durable* timer waits\nfor days.\n\n- one item\n- two items\n\n"
                    "See [the docs](https://learn.microsoft.com) for `create_timer`.\n\n## Limits\n\nSix days."}


@pytest.mark.parametrize("selected", [
    "A durable timer waits for days.",          # emphasis and a line break in the source
    "waits for days. one item two items",       # across a paragraph and a list
    "See the docs for create_timer.",           # a link's text, code spans
    "Limits Six days.",                         # a heading
    "Durable timers",                           # the title
    "  durable   timer  ",                      # spacing as a selection may hold it
])
def test_what_a_reviewer_selects_on_the_rendered_page_is_found_in_the_markdown(selected):
    assert quote_found(selected, DRAFT)


@pytest.mark.parametrize("selected", ["durable timers wait", "https://learn.microsoft.com", "", "   ", "Seven days."])
def test_words_the_draft_does_not_show_are_not_found(selected):
    assert not quote_found(selected, DRAFT)


def test_the_first_comment_whose_quote_is_missing_is_named():
    comments = [{"quote": "for days", "comment": "a"}, {"quote": "for weeks", "comment": "b"}]
    assert missing_quote(comments, DRAFT) == 2
    assert missing_quote(comments[:1], DRAFT) is None


@pytest.mark.parametrize("quote, later, state", [
    ("A durable timer waits for days.", "A durable timer waits for days. More.", UNCHANGED),
    ("A durable timer waits for days.", "A durable timer waits a while.", CHANGED),     # 4 of 6 words kept
    ("A durable timer waits for days.", "Timers can wait.", GONE),
    ("waits", "nothing of it", GONE),                                                   # one word: found or gone
    ("the timer waits", "a timer sleeps", GONE),                                        # one word is no run
])
def test_a_quote_in_a_later_draft_is_unchanged_changed_or_gone(quote, later, state):
    assert quote_state(quote, {"title": "", "content": later}) == state


def test_plain_folds_markdown_as_the_page_shows_it():
    assert plain("1. **Bold** and _it_\n2. [link](x) `code`") == "Bold and it link code"


def test_a_review_takes_a_bounded_number_of_comments():
    assert too_many_comments(MAX_COMMENTS_PER_REVIEW - 2, 2) is None
    assert "at most" in too_many_comments(MAX_COMMENTS_PER_REVIEW - 1, 2)
