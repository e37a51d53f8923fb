"""How a draft is shown to a reviewer: its Markdown rendered safely, and what changed
since the previous round's draft.

Markdown: markdown-it-py's CommonMark renderer with raw HTML off (it is escaped, never
passed through), images off (a draft must not make the reviewer's browser fetch
anything) and links only to http, https and mailto addresses. What the writer (a model)
or a person typed can therefore never become script, styling or a request.

Diff: word by word (difflib on words and the spaces between them), as runs of kept,
inserted and removed text, which the page marks up itself as text.
"""
from __future__ import annotations

import difflib
import re
from typing import Optional

from markdown_it import MarkdownIt

ALLOWED_LINK_SCHEMES = ("http:", "https:", "mailto:")
_TOKENS = re.compile(r"\s+|[^\s]+")


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")
    md.validateLink = _safe_link  # also covers autolinks, <https://...>
    return md


def _safe_link(url: str) -> bool:
    return url.strip().lower().startswith(ALLOWED_LINK_SCHEMES)


_MARKDOWN = _renderer()


def render_markdown(text: str) -> str:
    html = _MARKDOWN.render(text or "")
    # Links open outside the review page and tell the target nothing about it.
    return html.replace("<a href=", '<a rel="noopener noreferrer nofollow" target="_blank" href=')


def word_diff(before: Optional[str], after: str) -> Optional[list[dict]]:
    """Runs of {"op": "=", "+" or "-", "text"}; None when there is no earlier text."""
    if before is None:
        return None
    old, new = _TOKENS.findall(before), _TOKENS.findall(after)
    runs: list[dict] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _add(runs, "=", "".join(new[j1:j2]))
            continue
        if tag in ("delete", "replace"):
            _add(runs, "-", "".join(old[i1:i2]))
        if tag in ("insert", "replace"):
            _add(runs, "+", "".join(new[j1:j2]))
    return runs


def _add(runs: list[dict], op: str, text: str) -> None:
    if not text:
        return
    if runs and runs[-1]["op"] == op:
        runs[-1]["text"] += text
    else:
        runs.append({"op": op, "text": text})
