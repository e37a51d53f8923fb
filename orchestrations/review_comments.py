"""A review's comments on passages, from one round to the next (pure).

A rejection may point at passages of the draft (``{"quote", "comment"}``). Each comment
gets an id (``c1``, ``c2``, …) and is **open**. Every comment not resolved goes to the
writer with each redraft; the writer answers it (what it changed for it, or why not), its
activity records what became of the quote in the new draft (unchanged, changed or gone),
and the comment is **answered**. While a later draft waits, a reviewer **resolves** a
comment or **reopens** it (it was not dealt with); a comment neither resolved nor
reopened goes to the writer again too. Every comment keeps its answers and its changes of
state, round by round: that is its audit trail.
"""
from __future__ import annotations

from typing import Optional

from shared_code.models import ReviewNote

OPEN, ANSWERED, RESOLVED = "open", "answered", "resolved"


def added(comments: tuple, new: tuple, round_: int, stage: Optional[str], by: str, at: str) -> tuple:
    """The comments with a rejection's new ones, numbered on."""
    records = []
    for number, item in enumerate(new, len(comments) + 1):
        record = {"id": f"c{number}", "round": round_, "quote": item["quote"], "comment": item["comment"],
                  "by": by, "at": at, "state": OPEN, "answers": [], "changes": []}
        if stage is not None:
            record["stage"] = stage
        records.append(record)
    return (*comments, *records)


def for_writer(comments: tuple) -> list[dict]:
    """The comments not resolved, as the writer is given them."""
    return [{"id": c["id"], "quote": c["quote"], "comment": c["comment"]} for c in comments
            if c.get("state") != RESOLVED]


def answered(comments: tuple, answers: list, round_: int) -> tuple:
    """The comments with the writer's answers for the draft of ``round_``: every comment
    it was given (those not resolved) gets one, "no answer" when the writer gave none."""
    by_id = {a.get("id"): a for a in answers or () if isinstance(a, dict)}
    records = []
    for comment in comments:
        if comment.get("state") != RESOLVED:
            given = by_id.get(comment["id"], {})
            answer = {"round": round_, "answer": str(given.get("answer") or "no answer from the writer"),
                      "changed": given.get("changed") is True, "quote": given.get("quote", "")}
            comment = {**comment, "state": ANSWERED, "answers": [*comment.get("answers", ()), answer]}
        records.append(comment)
    return tuple(records)


def note_problem(comments: tuple, note: ReviewNote, round_: int) -> Optional[str]:
    """Why a comment cannot be resolved or reopened now; None when it can."""
    comment = next((c for c in comments if c.get("id") == note.comment), None)
    if note.round != round_:
        return f"it is for round {note.round}, but round {round_} is under review"
    if comment is None:
        return f"this review has no comment '{note.comment}'"
    if comment["round"] >= round_:
        return f"comment '{note.comment}' is on this round's draft; it can be resolved once the writer has answered it"
    wanted = RESOLVED if note.change == "resolve" else OPEN
    if comment.get("state") == wanted:
        return f"comment '{note.comment}' is already {wanted}"
    return None


def with_state(comments: tuple, note: ReviewNote, at: str) -> tuple:
    state = RESOLVED if note.change == "resolve" else OPEN
    change = {"round": note.round, "state": state, "by": note.by, "at": at}
    return tuple({**c, "state": state, "changes": [*c.get("changes", ()), change]} if c.get("id") == note.comment
                 else c for c in comments)


def shown(comments: tuple) -> list[dict]:
    """Each comment as the status shows it: its texts, its state, and the writer's latest
    answer with what became of its quote."""
    view = []
    for comment in comments:
        item = {"id": comment["id"], "round": comment["round"], "state": comment.get("state", OPEN),
                "quote": comment["quote"], "comment": comment["comment"], "by": comment.get("by", "")}
        if comment.get("stage"):
            item["stage"] = comment["stage"]
        answers = comment.get("answers") or []
        if answers:
            latest = answers[-1]
            item.update(answerRound=latest["round"], answer=latest["answer"], changed=latest.get("changed", False),
                        quoteState=latest.get("quote", ""))
        changes = comment.get("changes") or []
        if changes:
            item.update(stateBy=changes[-1].get("by", ""), stateAt=changes[-1].get("at", ""))
        view.append(item)
    return view
