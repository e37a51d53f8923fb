"""What a review shows the world: its custom status, as one typed view.

The orchestrator writes it (``to_custom_status``) and everything else reads it through
``ReviewStatus.read``: the routes, the review page's state route, the smoke test and the
benchmarks. Reading accepts every earlier shape the app has written (a missing field
takes its default), because a status written by the previous release is what a route
reads until the review's next episode, and a finished review keeps it for good.
"""
from __future__ import annotations

import json
import threading
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Optional

from azure.durable_functions import OrchestrationRuntimeStatus

from .fast_json import compact
from .stages import Stage

# The Durable extension refuses a custom status over 16 KB of UTF-16 and fails the
# orchestration (MessagePayloadDataConverter.Serialize(value, 16)). The status stays under
# this, shortening texts when it must; the full texts are in the review's state.
CUSTOM_STATUS_LIMIT_BYTES = 15 * 1024

# The runtime statuses of an instance that has ended, as the Durable status API spells them.
FINISHED = tuple(s.value for s in (OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed,
                                   OrchestrationRuntimeStatus.Terminated, OrchestrationRuntimeStatus.Canceled))


@dataclass(frozen=True)
class ReviewStatus:
    stage: str = "drafting"
    round: int = 1
    max_rounds: int = 1
    message: str = ""
    topic: str = ""
    request: dict = field(default_factory=dict)
    writer: Optional[str] = None
    draft: Optional[dict] = None
    deadline: Optional[str] = None
    reviewable_since: Optional[str] = None
    decisions: tuple = ()
    ignored: tuple = ()
    earlier_drafts: tuple = ()
    notification: Optional[dict] = None
    cancel: Optional[dict] = None
    retrying: Optional[str] = None
    reminders: tuple = ()
    escalated_at: Optional[str] = None
    deadline_changes: tuple = ()
    # The review policy's stages in this round (the one under review lists its seats),
    # which one is under review, the latest events the review took, and seat changes.
    stages: tuple = ()
    stage_index: int = 0
    acks: tuple = ()
    seat_changes: tuple = ()
    # The reviewer's aids: the comments on passages (texts cut when they must be; the
    # review's state has them whole), the writer's list of changes in the draft, the
    # house-rules check of the draft, and the seats of the stage under review that have
    # opened its page (None: a review that does not record first views).
    comments: tuple = ()
    changes: tuple = ()
    check: Optional[dict] = None
    views: Optional[tuple] = None
    # How many comments the review holds, and how many of each state the status leaves
    # out when it shows only some (open ones first, then the latest): the review's state
    # has them all, and the review page's state route serves them from there. None: a
    # status written before these were counted, which showed every comment.
    comment_count: Optional[int] = None
    comments_left_out: Optional[dict] = None
    # The status is a summary (within_limit's last step): only where the review stands
    # and who may decide, the texts cut short.
    summary: bool = False

    _FIELDS = (("stage", "stage"), ("round", "round"), ("max_rounds", "maxRounds"),
               ("message", "message"), ("topic", "topic"), ("request", "request"),
               ("writer", "writer"), ("draft", "draft"), ("deadline", "deadline"),
               ("reviewable_since", "reviewableSince"), ("decisions", "decisions"),
               ("ignored", "ignored"), ("earlier_drafts", "earlierDrafts"),
               ("notification", "notification"), ("cancel", "cancel"), ("retrying", "retrying"),
               ("reminders", "reminders"), ("escalated_at", "escalatedAt"),
               ("deadline_changes", "deadlineChanges"), ("stages", "stages"), ("stage_index", "stageIndex"),
               ("acks", "acks"), ("seat_changes", "seatChanges"), ("comments", "comments"),
               ("changes", "changes"), ("check", "check"), ("views", "views"),
               ("comment_count", "commentCount"), ("comments_left_out", "commentsLeftOut"), ("summary", "summary"))

    @classmethod
    def read(cls, custom_status: Any) -> "ReviewStatus":
        data = custom_status if isinstance(custom_status, dict) else {}
        values = dict(_READ_DEFAULTS)
        for name, key in cls._FIELDS:
            value = data.get(key)
            if value is not None:
                values[name] = tuple(value) if isinstance(value, list) else value
        if not isinstance(values.get("request"), dict):
            # Statuses written before the request was carried name the topic and limits.
            values["request"] = {"topic": values["topic"], "max_review_attempts": values["max_rounds"]}
        # Filled in directly: the frozen class's __init__ sets its 34 fields one at a time
        # through object.__setattr__, 4 µs a status, and a page of the pending list reads 100.
        status = object.__new__(cls)
        status.__dict__.update(values)
        return status

    def to_custom_status(self) -> dict:
        """The status an orchestrator sets: cut to the extension's limit when it must be."""
        return within_limit(self.to_json())

    def to_json(self) -> dict:
        """The status as read, for a reply: a status the extension kept already fits."""
        status = {}
        for name, key in self._FIELDS:
            value = getattr(self, name)
            status[key] = list(value) if isinstance(value, tuple) else value
        return status

    # -- questions the routes ask ------------------------------------------------------

    @property
    def phase(self) -> Stage:
        return Stage.of(self.stage)

    @property
    def awaiting_review(self) -> bool:
        return self.phase.decidable

    @property
    def current_stage(self) -> dict:
        """The policy stage under review as the status shows it (a status written before
        policies had one stage, open to anyone)."""
        if 0 <= self.stage_index < len(self.stages) and isinstance(self.stages[self.stage_index], dict):
            return self.stages[self.stage_index]
        return {"name": "review", "require": "any", "seats": 1,
                "seatStates": [{"seat": "anyone", "state": "waiting"}]}

    def outcome_of(self, event_id: str, bound_round: Optional[int], bound_stage: Optional[int] = 0
                   ) -> Optional["Outcome"]:
        """What became of the decision (or cancel) with this id, as far as the status tells;
        None while it may still be applied. An event bound to a round and not yet recorded
        is answered by what ended it once it is over: a decision, bound to a stage, once
        its stage is decided; an event of the whole round (``bound_stage`` None: an
        extension, a note on a comment), once the round is."""
        if not event_id:
            return None
        for ack in self.acks:
            if isinstance(ack, dict) and ack.get("id") == event_id and ack.get("sameAs"):
                first = next((d for d in self.decisions if d.get("id") == ack["sameAs"]), None)
                return Outcome("applied", decision=first, duplicate=True)
        for decision in self.decisions:
            if decision.get("id") == event_id:
                return Outcome("applied", decision=decision)
        for ignored in self.ignored:
            if ignored.get("id") == event_id:
                return Outcome("ignored", reason=ignored.get("reason", "ignored"), decision=ignored)
        if self.cancel and self.cancel.get("id") == event_id:
            return Outcome("applied", decision=self.cancel)
        for change in (*self.deadline_changes, *self.seat_changes):
            if change.get("id") == event_id:
                return Outcome("applied", decision=change)
        if any(isinstance(ack, dict) and ack.get("id") == event_id for ack in self.acks):
            return Outcome("applied")
        if bound_round is None:
            return None
        if bound_stage is None:
            earlier = self.decision_for(bound_round) if self._round_over(bound_round) else None
        elif self._stage_over(bound_round, bound_stage):
            earlier = next((d for d in self.decisions if d.get("round") == bound_round
                            and d.get("stageIndex", 0) == bound_stage), None)
        else:
            earlier = None
        if earlier is None:
            return None
        return Outcome("ignored", decision=earlier, reason=f"round {bound_round} was already decided: "
                                                           f"{verdict_of(earlier)}")

    def viewed(self, seat: int) -> bool:
        """Whether the seat's first view of the stage under review is recorded (or the
        review records no views)."""
        return self.views is None or any(isinstance(v, dict) and v.get("seat") == seat for v in self.views)

    def comment(self, comment_id: str) -> Optional[dict]:
        """The comment as the status shows it; None when the review has no such comment or
        the status leaves it out (``all_comments_shown`` tells which)."""
        return next((c for c in self.comments if isinstance(c, dict) and c.get("id") == comment_id), None)

    @property
    def comments_held(self) -> int:
        """How many comments the review holds, whether the status shows them all or not."""
        return self.comment_count if isinstance(self.comment_count, int) else len(self.comments)

    @property
    def all_comments_shown(self) -> bool:
        return self.comments_held <= len(self.comments)

    def decision_for(self, round_: int) -> Optional[dict]:
        """The decision recorded last for a round (the one that settled it)."""
        return next((d for d in reversed(self.decisions) if d.get("round") == round_), None)


    def _round_over(self, round_: int) -> bool:
        """That round is decided: the review has moved past it."""
        return self.round != round_ or not self.awaiting_review

    def _stage_over(self, round_: int, stage: int) -> bool:
        """The stage of that round is decided: the review has moved past it."""
        return self._round_over(round_) or self.stage_index != stage


@dataclass(frozen=True)
class Outcome:
    kind: str                 # "applied" or "ignored"
    reason: str = ""
    decision: Optional[dict] = None
    # A second decision by the same person in the same stage: the first one's outcome.
    duplicate: bool = False


# What a decision records as "by" when no person is named: the channel it came by.
CHANNELS = ("function key", "review link")


def actor(record: dict) -> str:
    """Who decided: "via function key" or "via review link" (the channel), or "by <name>"
    (the person); "" when the record does not say."""
    by = record.get("by")
    return f"via {by}" if by in CHANNELS else f"by {by}" if by else ""


def verdict_of(decision: dict) -> str:
    """How a decision went and who made it: "approved via function key", "rejected by ada@…"."""
    verdict = "approved" if decision.get("approved") else "rejected"
    return f"{verdict} {actor(decision)}".rstrip()


# -- keeping the custom status small ------------------------------------------------------

def utf16_size(value: Any) -> int:
    return _utf16_bytes(compact(value))


def _utf16_bytes(data: bytes) -> int:
    # Two bytes a character when every one is ASCII, as most statuses are: no decoding.
    if data.isascii():
        return 2 * len(data)
    return len(data.decode("utf-8", "surrogatepass").encode("utf-16-le", "surrogatepass"))


def within_limit(status: dict, limit: int = CUSTOM_STATUS_LIMIT_BYTES) -> dict:
    """The status, with its long texts cut step by step until it fits: the draft, earlier
    drafts, feedback, the topic, then lists kept to their latest entries, the comments to
    a window of them; the last step, a summary, always fits. A cut text is marked
    (``"excerpt": true`` on a draft, ``"feedbackChars"`` on a decision) so a reader knows
    to fetch the whole text from the review's state.

    A status that fits is measured once, whole. One that does not is cut by ``_cut``,
    and the cut is kept, by the status's compact JSON: a review's orchestrator builds its
    status several times in every replay, the same statuses as in the replay before, and
    cutting one is milliseconds for the largest team review. The result is shared; nobody
    changes it."""
    # Measured on orjson's JSON: a review's orchestrator measures every status it builds, in
    # every replay, and the standard library took a tenth of a team review's decision doing
    # it. orjson writes the same text but for values no status holds (fast_json), and the
    # SDK's serialisation of the status refuses what the standard library does.
    json_bytes = compact(status)
    size = _utf16_bytes(json_bytes)
    if size <= limit:
        return status
    key = (json_bytes, limit)
    cut = _CUTS.get(key)
    if cut is None:
        # Kept apart from the status it was cut from, whose fields it would otherwise share
        # with the caller, and in JSON's own types, as the extension will read it.
        cut = json.loads(json.dumps(_cut(status, size, limit), separators=(",", ":"), ensure_ascii=False))
        with _CUTS_LOCK:
            _CUTS[key] = cut
            while len(_CUTS) > CUTS_KEPT:
                del _CUTS[next(iter(_CUTS))]
    return cut


# The cut statuses kept, oldest first; a replay of the largest team review builds at most
# six, and reviews replaying side by side each keep theirs.
CUTS_KEPT = 64
_CUTS: dict[tuple[bytes, int], dict] = {}
_CUTS_LOCK = threading.Lock()


def _cut(status: dict, size: int, limit: int) -> dict:
    """``status``, whose compact JSON is ``size`` bytes, cut to fit. Each step measures
    only the fields it changed, before and after (a field measured after one step is known
    for the next), and never the ones it left alone, or copied unchanged."""
    members = size - _object_size(dict.fromkeys(status, 0))
    known: dict[str, int] = {}
    for shrink in _SHRINK_STEPS:
        if members + _object_size(dict.fromkeys(status, 0)) <= limit:
            return status
        shrunk = shrink(status)
        for key in status.keys() | shrunk.keys():
            before, after = status.get(key, _ABSENT), shrunk.get(key, _ABSENT)
            if before is after:
                continue
            if _same_json(before, after):
                shrunk[key] = before  # a step's new copy of what it left as it was
                continue
            if before is not _ABSENT:
                members -= known.pop(key) if key in known else _member_size(key, before)
            if after is not _ABSENT:
                known[key] = _member_size(key, after)
                members += known[key]
        status = shrunk
    return status


_ABSENT = object()


def _same_json(before: Any, after: Any) -> bool:
    """``after`` is a step's copy of ``before`` made of the very same values (a list of the
    same records, a dict of the same members in the same order), so its JSON is the same
    and it need not be measured again; most steps copy what they do not cut."""
    if before is after:
        return True
    if isinstance(before, (list, tuple)) and isinstance(after, (list, tuple)):
        return len(before) == len(after) and all(map(_same_json, before, after))
    if isinstance(before, dict) and isinstance(after, dict):
        return len(before) == len(after) and all(
            k == j and _same_json(v, w) for (k, v), (j, w) in zip(before.items(), after.items()))
    return False


def _member_size(key: str, value: Any) -> int:
    """UTF-16 bytes of ``"key":value`` in the compact JSON of an object."""
    return utf16_size(key) + 2 + utf16_size(value)


def _object_size(member_sizes: dict) -> int:
    """UTF-16 bytes of an object from its members' sizes: braces and the commas between."""
    return 2 * (2 + max(len(member_sizes) - 1, 0)) + sum(member_sizes.values())


def _draft_excerpt(chars: int):
    def shrink(status: dict) -> dict:
        draft = status.get("draft")
        if not isinstance(draft, dict) or len(draft.get("content") or "") <= chars:
            return status
        content = draft["content"]
        return {**status, "draft": {**draft, "content": content[:chars], "excerpt": True,
                                    "contentChars": draft.get("contentChars", len(content))}}
    return shrink


def _records_cut(key: str, text_key: str, chars: int, keep: Optional[int] = None):
    def shrink(status: dict) -> dict:
        records = status.get(key) or []
        if keep is not None:
            records = records[-keep:]
        cut = []
        for record in records:
            text = record.get(text_key)
            if isinstance(text, str) and len(text) > chars:
                record = {**record, text_key: text[:chars], f"{text_key}Chars": len(text)}
            cut.append(record)
        return {**status, key: cut}
    return shrink


def _topic_cut(chars: int):
    def shrink(status: dict) -> dict:
        topic = status.get("topic") or ""
        request = dict(status.get("request") or {})
        if len(request.get("topic") or "") > chars:
            request["topic"] = request["topic"][:chars]
        return {**status, "topic": topic[:chars], "request": request}
    return shrink


def _request_policy_summary(status: dict) -> dict:
    """The status's copy of the run request names the policy's stages only (``stages``
    shows each one); the whole policy is in the review's state."""
    request = status.get("request") or {}
    review = request.get("review")
    if not isinstance(review, dict) or not isinstance(review.get("stages"), list):
        return status
    return {**status, "request": {**request, "review": {"stages": [
        {"name": stage.get("name")} for stage in review["stages"] if isinstance(stage, dict)]}}}


def _decisions_kept(whole_round: bool):
    """The decisions of the round under review (only of its stage under review unless
    ``whole_round``) and the rejections that led to it; the stages show the tallies."""
    def shrink(status: dict) -> dict:
        current, index = status.get("round"), status.get("stageIndex", 0)
        kept = [d for d in status.get("decisions") or [] if isinstance(d, dict) and (
            d.get("round") == current and (whole_round or d.get("stageIndex", 0) == index)
            or d.get("round") != current and not d.get("approved"))]
        return {**status, "decisions": kept}
    return shrink


_COMPACT_DECISION = ("round", "stageIndex", "seatIndex", "approved", "feedback", "by", "byName", "at", "id",
                     "edited", "feedbackChars")


def _decisions_compact(status: dict) -> dict:
    """Each decision with what a reader needs to tell whose and which it was; the
    review's state keeps the whole records."""
    return {**status, "decisions": [{k: v for k, v in d.items() if k in _COMPACT_DECISION}
                                    for d in status.get("decisions") or [] if isinstance(d, dict)]}


_COMMENT_TEXTS = ("quote", "comment", "answer")


def _comments_cut(chars: int):
    """Each comment's texts cut to ``chars``, marked ``"cut": true``."""
    def shrink(status: dict) -> dict:
        cut = []
        for comment in status.get("comments") or []:
            if any(len(comment.get(key) or "") > chars for key in _COMMENT_TEXTS):
                comment = {**comment, **{key: comment[key][:chars] for key in _COMMENT_TEXTS if key in comment},
                           "cut": True}
            cut.append(comment)
        return {**status, "comments": cut}
    return shrink


_BARE_COMMENT = ("id", "round", "state", "answerRound", "changed", "quoteState")


def _comments_bare(status: dict) -> dict:
    """Each comment's id, round and state, and what became of its quote; no texts."""
    return {**status, "comments": [{**{k: v for k, v in c.items() if k in _BARE_COMMENT}, "cut": True}
                                    for c in status.get("comments") or [] if isinstance(c, dict)]}


def _comments_window(keep: int):
    """At most ``keep`` comments: those not resolved first, newest first, then the latest
    resolved ones, shown in the order they were made; ``commentsLeftOut`` counts the rest
    by state. The review's state keeps every comment, and the review page's state route
    reads them from there."""
    def shrink(status: dict) -> dict:
        comments = [c for c in status.get("comments") or [] if isinstance(c, dict)]
        if len(comments) <= keep:
            return status
        newest_first = list(reversed(range(len(comments))))
        ranked = [i for i in newest_first if comments[i].get("state") != "resolved"] + \
                 [i for i in newest_first if comments[i].get("state") == "resolved"]
        kept = set(ranked[:keep])
        left_out = dict(status.get("commentsLeftOut") or {})
        for index in ranked[keep:]:
            state = str(comments[index].get("state", "open"))
            left_out[state] = left_out.get(state, 0) + 1
        return {**status, "comments": [c for i, c in enumerate(comments) if i in kept], "commentsLeftOut": left_out}
    return shrink


def _check_cut(chars: int, bare: bool = False):
    """The check's texts cut to ``chars``; ``bare``: each rule and its verdict only."""
    def shrink(status: dict) -> dict:
        check = status.get("check")
        if not isinstance(check, dict) or not check.get("results"):
            return status
        results = []
        for result in check["results"]:
            result = {k: (v[:chars] if isinstance(v, str) and k != "verdict" else v) for k, v in result.items()}
            results.append({k: result[k] for k in ("rule", "verdict") if k in result} if bare else result)
        return {**status, "check": {**check, "results": results, "cut": True}}
    return shrink


def _changes_cut(chars: int):
    def shrink(status: dict) -> dict:
        return {**status, "changes": [c[:chars] for c in status.get("changes") or [] if isinstance(c, str)]}
    return shrink


def _acks_kept(keep: int):
    def shrink(status: dict) -> dict:
        return {**status, "acks": (status.get("acks") or [])[-keep:], "seatChanges": (status.get("seatChanges") or [])[-2:]}
    return shrink


def _seat_notices_cut(status: dict) -> dict:
    """The seats' notices without their Slack message ids (the review's state keeps them)."""
    notification = status.get("notification")
    if not isinstance(notification, dict) or not notification.get("seats"):
        return status
    seats = [{k: v for k, v in seat.items() if k != "slackMessage"} for seat in notification["seats"]
             if isinstance(seat, dict)]
    return {**status, "notification": {**notification, "seats": seats}}


# What a summary keeps (see _summary), each text cut to this many characters.
_SUMMARY_SCALARS = ("stage", "round", "maxRounds", "stageIndex", "deadline", "reviewableSince", "escalatedAt",
                    "commentCount", "commentsLeftOut")
_SUMMARY_TEXT_CHARS = 200
_SUMMARY_DECISION = ("round", "stageIndex", "seatIndex", "approved", "by", "id")
_SUMMARY_SEAT = ("seat", "state", "claimedBy", "claimUntil")


def _summary(status: dict) -> dict:
    """The last step, which always fits: where the review stands and what the routes need
    to take a decision (the seats of the stage under review, its decisions, the latest
    events taken), every text cut short, marked ``"summary": true``. If even that is over
    the limit (seats named with hundreds of characters outside the BMP), the seats and
    decisions go too, and the routes refuse decisions rather than guess at the seats;
    what is left is bounded by the limits on a run request and a policy."""
    def cut(value: Any, chars: int = _SUMMARY_TEXT_CHARS) -> Any:
        return value[:chars] if isinstance(value, str) else value

    request = status.get("request") or {}
    summary = {key: status.get(key) for key in _SUMMARY_SCALARS}
    summary.update(
        summary=True, message=cut(status.get("message")), topic=cut(status.get("topic")),
        writer=cut(status.get("writer"), 40), retrying=cut(status.get("retrying")),
        # The title too: the routes read a draft under review from the status.
        draft={k: cut(v) for k, v in status["draft"].items()} if isinstance(status.get("draft"), dict) else None,
        request={k: cut(v) for k, v in request.items() if k != "review"},
        cancel={k: cut(v) for k, v in status["cancel"].items()} if isinstance(status.get("cancel"), dict) else None,
        stages=[{k: v for k, v in stage.items() if k != "seatStates"}
                for stage in status.get("stages") or [] if isinstance(stage, dict)],
        comments=[])
    stages = status.get("stages") or []
    index = status.get("stageIndex", 0)
    if not (0 <= index < len(stages) and isinstance(stages[index], dict)):
        return summary
    current, round_ = stages[index], status.get("round")
    with_seats = {
        **summary, "stages": [*summary["stages"][:index], {**summary["stages"][index], "seatStates": [
            {k: v for k, v in seat.items() if k in _SUMMARY_SEAT} for seat in current.get("seatStates") or []]},
            *summary["stages"][index + 1:]],
        "decisions": [{k: cut(v, 60) if k == "by" else v for k, v in d.items() if k in _SUMMARY_DECISION}
                      for d in status.get("decisions") or [] if isinstance(d, dict) and d.get("round") == round_
                      and d.get("stageIndex", 0) == index],
        "acks": (status.get("acks") or [])[-8:]}
    return with_seats if utf16_size(with_seats) <= CUSTOM_STATUS_LIMIT_BYTES else summary


_SHRINK_STEPS = (
    _draft_excerpt(4000), _comments_cut(300), _check_cut(160), _request_policy_summary,
    _decisions_kept(whole_round=True), _records_cut("earlierDrafts", "content", 300),
    _records_cut("decisions", "feedback", 500), _topic_cut(500), _comments_cut(100), _check_cut(80),
    _changes_cut(80), _draft_excerpt(1500),
    _records_cut("ignored", "reason", 200, keep=5), _records_cut("deadlineChanges", "by", 100, keep=5),
    _records_cut("decisions", "feedback", 100), _records_cut("earlierDrafts", "title", 100),
    _draft_excerpt(500), _records_cut("decisions", "by", 60), _records_cut("reminders", "channel", 20, keep=5),
    _topic_cut(100), _records_cut("ignored", "reason", 80, keep=2), _decisions_kept(whole_round=False),
    _decisions_compact, _comments_bare, _comments_window(20), _check_cut(40, bare=True), _acks_kept(8),
    _seat_notices_cut, _draft_excerpt(100), _records_cut("decisions", "feedback", 40), _comments_window(0),
    _summary,
)


# What ReviewStatus.read starts from: the fields' defaults ("request", whose default is made
# anew each time, is always set there).
_READ_DEFAULTS = {f.name: f.default for f in fields(ReviewStatus) if f.default is not MISSING}
