"""Request, decision and draft models with their validation rules.

Routes validate what people send; activities validate what the writer
returns. Both use these functions, so one rule lives in one place.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Optional

from .identity import display_name

MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 20
MAX_TOPIC_CHARS = 2_000
MAX_FEEDBACK_CHARS = 4_000
MAX_TITLE_CHARS = 300
MAX_CONTENT_CHARS = 20_000
MIN_REVIEW_ATTEMPTS, MAX_REVIEW_ATTEMPTS = 1, 10
DEFAULT_REVIEW_ATTEMPTS = 3
DEFAULT_TIMEOUT_HOURS = 72.0
MAX_TIMEOUT_HOURS = 720.0
MAX_CANCEL_REASON_CHARS = 500
MAX_AGENT_MESSAGE_CHARS = MAX_TOPIC_CHARS  # a thread's first message is the writer's topic

# The key under which a review's first execution gets its run request, and the version
# of the review state (orchestrations/review_state.py) this release marks it with.
START_INPUT_KEY = "start"
# Beside it, the Teams contacts the run route found for the people the policy names.
CONTACTS_INPUT_KEY = "contacts"
# Beside the request when the deployment sends Slack messages (version 5).
SLACK_INPUT_KEY = "slack"
START_INPUT_VERSION = 5
APPROVAL_EVENT = "ApprovalEvent"
CANCEL_EVENT = "CancelEvent"
EXTEND_EVENT = "ExtendDeadlineEvent"
# Seat changes, and reviewers' notes that decide nothing (a comment resolved or reopened, a
# seat's first view): kinds of change to a review that are no decision.
SEAT_EVENT = "SeatChangeEvent"
ON_TIMEOUT_POLICIES = ("fail", "escalate")
DEFAULT_ESCALATION_HOURS = 24.0
MAX_REMINDERS = 5
# A decision that names no round is taken only for a draft that has been reviewable this
# long: a double-click or a retry sent for one draft must not land on the next one.
ROUNDLESS_DECISION_GRACE_SECONDS = 5.0
MAX_ACTOR_CHARS = 200
MAX_STAGE_NAME_CHARS = 40
# Comments on passages: a rejection carries at most this many, each quoting the draft.
MAX_COMMENTS_PER_DECISION = 20
MAX_QUOTE_CHARS = 300
MAX_COMMENT_CHARS = 1_000
# Every comment is replayed with the review's state: a review holds this many at most.
MAX_COMMENTS_PER_REVIEW = 50

_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_DECISION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ValidationError(ValueError):
    """User input that cannot be accepted; the message is safe to return to the caller."""


def parse_json_body(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise ValidationError(f"request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("request body is not valid UTF-8") from None
    if not text.strip():
        raise ValidationError("request body is empty; send a JSON object")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValidationError("request body is nested too deeply") from None
    except ValueError as exc:
        raise ValidationError(f"request body is not valid JSON: {exc}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValidationError(f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def durable_payload(value: Any) -> Any:
    """A value as the Durable extension delivers it, decoded once more where it arrives as
    JSON text. The SDK's client double-encodes what it sends (``raise_event`` and
    ``start_new`` post ``json.dumps(value)`` as a JSON body), and the extension keeps that
    JSON string: an orchestrator's ``wait_for_external_event`` gets a ``str`` and a status
    ``input`` is a ``str`` (azure-functions-durable-python#295). A raw HTTP call with a
    JSON object body gives the object itself. Text that is not JSON stays as it is."""
    if not isinstance(value, str):
        return value
    try:
        return parse_json_body(value.encode("utf-8"))
    except (ValidationError, UnicodeEncodeError):
        return value


def stored_payload(value: Any) -> Any:
    """A value the Durable backend keeps for this app (an instance's input or output, an
    activity's result), decoded where it arrives as JSON text (see ``durable_payload``).
    This app's orchestrator wrote it, so a request body's limits do not apply: the state
    of a review with fifty comments is larger than any request."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_json_object(body: bytes) -> dict:
    value = parse_json_body(body)
    if not isinstance(value, dict):
        raise ValidationError(f"request body must be a JSON object, got {_json_type(value)}")
    return value


def validate_instance_id(instance_id: str) -> str:
    if not _INSTANCE_ID.match(instance_id or ""):
        raise ValidationError(
            "instance id must be 1-100 characters of letters, digits, '_', '.', ':' or '-'")
    return instance_id


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def _depth(value: Any) -> int:
    """How deeply containers nest, without recursion (a deep body must not overflow)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            pending.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, level + 1) for child in item)
    return deepest


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            type(None): "null"}.get(type(value), "number")


def _shown(value: Any) -> str:
    """A value in an error message, in JSON's words (true, not True)."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, OverflowError):
        text = _json_type(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(obj: dict, key: str, *, limit: int, required: bool, default: str = "") -> str:
    value = obj.get(key, None)
    if value is None:
        if required:
            raise ValidationError(f"'{key}' is required")
        return default
    if not isinstance(value, str):
        raise ValidationError(f"'{key}' must be a string, got {_json_type(value)}")
    value = value.strip()
    if required and not value:
        raise ValidationError(f"'{key}' must not be blank")
    if len(value) > limit:
        raise ValidationError(f"'{key}' must be at most {limit} characters, got {len(value)}")
    if _CONTROL_CHARS.search(value):
        raise ValidationError(f"'{key}' must not contain control characters")
    if _LONE_SURROGATE.search(value):
        raise ValidationError(f"'{key}' must be valid Unicode text (it holds a lone surrogate)")
    return value


def _integer(obj: dict, key: str, *, low: int, high: int, default: Optional[int]) -> Optional[int]:
    value = obj.get(key, None)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"'{key}' must be an integer, got {_json_type(value)} {_shown(value)}")
    if not low <= value <= high:
        raise ValidationError(f"'{key}' must be between {low} and {high}, got {value}")
    return value


def _hours(obj: dict, key: str, default: float, high: float = MAX_TIMEOUT_HOURS) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"'{key}' must be a number, got {_json_type(value)}")
    # An integer too large for a float (1 followed by 400 zeros) is out of range too.
    if isinstance(value, int) and not -1e300 < value < 1e300:
        raise ValidationError(f"'{key}' must be greater than 0 and at most {high:g}")
    if not math.isfinite(value) or not 0 < value <= high:
        raise ValidationError(f"'{key}' must be greater than 0 and at most {high:g}")
    return float(value)


def _reject_unknown(obj: dict, allowed: set[str]) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(unknown)}")


@dataclass(frozen=True)
class RunRequest:
    """``POST /api/hitl/run``. Without the optional deadline fields a review behaves as the
    reference does: no reminder, and "timed out" at the deadline."""
    topic: str
    max_review_attempts: int = DEFAULT_REVIEW_ATTEMPTS
    approval_timeout_hours: float = DEFAULT_TIMEOUT_HOURS
    remind_before_hours: tuple = ()
    on_timeout: str = "fail"
    escalation_hours: float = DEFAULT_ESCALATION_HOURS
    # The review policy (stages and seats) as JSON; None for the default policy.
    review: Optional[dict] = None

    @classmethod
    def from_json(cls, obj: dict, default_reminders: tuple = (),
                  default_review: Optional[dict] = None) -> "RunRequest":
        from .review_policy import ReviewPolicy  # the policy's own rules use this module's
        _reject_unknown(obj, {"topic", "max_review_attempts", "approval_timeout_hours",
                              "remind_before_hours", "on_timeout", "escalation_hours", "review"})
        topic = _text(obj, "topic", limit=MAX_TOPIC_CHARS, required=True)
        attempts = _integer(obj, "max_review_attempts", low=MIN_REVIEW_ATTEMPTS,
                            high=MAX_REVIEW_ATTEMPTS, default=DEFAULT_REVIEW_ATTEMPTS)
        hours = _hours(obj, "approval_timeout_hours", DEFAULT_TIMEOUT_HOURS)
        if "remind_before_hours" in obj:
            reminders = _reminders(obj["remind_before_hours"], hours)
        else:  # the app-wide default, where it fits this review's deadline
            reminders = tuple(h for h in default_reminders if h < hours)
        on_timeout = obj.get("on_timeout", "fail")
        if on_timeout not in ON_TIMEOUT_POLICIES:
            raise ValidationError(f"'on_timeout' must be one of {', '.join(ON_TIMEOUT_POLICIES)}, "
                                  f"got {_shown(on_timeout)}")
        if "escalation_hours" in obj and on_timeout != "escalate":
            raise ValidationError("'escalation_hours' needs \"on_timeout\": \"escalate\"")
        escalation = _hours(obj, "escalation_hours", DEFAULT_ESCALATION_HOURS)
        review = ReviewPolicy.from_json(obj["review"]) if "review" in obj else None
        policy = review.to_json() if review is not None else default_review
        if policy is not None and ReviewPolicy.from_json(policy).is_default:
            policy = None
        return cls(topic, attempts, hours, reminders, on_timeout, escalation, policy)

    def to_start_input(self, house_rules: tuple = (), slack: bool = False) -> dict:
        """The first execution's input: the request, the house rules the review's drafts
        are checked against and whether Slack messages are sent, marked with the state
        version of this release (the first releases sent the bare request, builds of state
        version 3 the request alone under the start key; see orchestrations/review_state.py)."""
        start = {"version": START_INPUT_VERSION, START_INPUT_KEY: self.to_json()}
        if house_rules:
            start["house_rules"] = list(house_rules)
        if slack:
            start[SLACK_INPUT_KEY] = True
        return start

    def to_json(self) -> dict:
        """The request as the review records it; the deadline fields only when used."""
        request = {"topic": self.topic, "max_review_attempts": self.max_review_attempts,
                   "approval_timeout_hours": self.approval_timeout_hours}
        if self.remind_before_hours:
            request["remind_before_hours"] = list(self.remind_before_hours)
        if self.on_timeout != "fail":
            request.update(on_timeout=self.on_timeout, escalation_hours=self.escalation_hours)
        if self.review is not None:
            request["review"] = self.review
        return request


def _reminders(value: Any, timeout_hours: float) -> tuple:
    values = value if isinstance(value, list) else [value]
    if len(values) > MAX_REMINDERS:
        raise ValidationError(f"'remind_before_hours' takes at most {MAX_REMINDERS} values")
    hours = [_hours({"remind_before_hours": v}, "remind_before_hours", 0.0) for v in values]
    too_late = [h for h in hours if h >= timeout_hours]
    if too_late:
        raise ValidationError(f"'remind_before_hours' must be less than approval_timeout_hours "
                              f"({timeout_hours:g}), got {too_late[0]:g}")
    return tuple(sorted(set(hours), reverse=True))


@dataclass(frozen=True)
class ExtendRequest:
    """``POST /api/hitl/extend/{id}``: more time for the round under review."""
    hours: float
    round: Optional[int] = None
    by: str = "function key"
    id: str = ""

    @classmethod
    def from_json(cls, obj: dict) -> "ExtendRequest":
        _reject_unknown(obj, {"hours"})
        if "hours" not in obj:
            raise ValidationError("'hours' is required")
        return cls(_hours(obj, "hours", 0.0))

    @classmethod
    def from_event(cls, payload: Any) -> Optional["ExtendRequest"]:
        payload = durable_payload(payload)
        if not isinstance(payload, dict):
            return None
        hours, round_ = payload.get("hours"), payload.get("round")
        if (isinstance(hours, bool) or not isinstance(hours, (int, float)) or not math.isfinite(hours)
                or not 0 < hours <= MAX_TIMEOUT_HOURS
                or not (isinstance(round_, int) and not isinstance(round_, bool))):
            return None
        return cls(float(hours), round_, _actor(payload.get("by"), "function key"),
                   _event_id(payload.get("id")))

    def bound(self, round_: int, by: str, request_id: str) -> "ExtendRequest":
        return ExtendRequest(self.hours, round_, by, request_id)

    def to_event(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """A reviewer's verdict on the draft of one round, in one stage of its review policy.

    ``id`` is given by the route that accepts the decision; the orchestrator records it,
    so the route can tell whether its decision was applied, and a decision delivered twice
    is applied once. The route also binds the stage (``stage_index``), the seat a signed
    link was made for (``seat``), the person who decides (``person``, when one is known),
    the channel it came by, whether the function key asserted who the person is, and what
    the channel calls the person (``by_name``: shown on cards and messages; ``by`` and
    ``person`` stay who decided).
    """
    approved: bool
    feedback: str = ""
    round: Optional[int] = None
    by: str = "function key"
    id: str = ""
    # An approval may carry the reviewer's edit of the draft ({"title"?, "content"?}):
    # what is published is the edited text.
    edit: Optional[dict] = None
    stage: Optional[str] = None
    reviewer: Optional[str] = None
    stage_index: Optional[int] = None
    seat: Optional[int] = None
    person: Optional[dict] = None
    channel: str = "function key"
    asserted: bool = False
    # A rejection may point at passages of the draft: ({"quote", "comment"}, ...).
    comments: tuple = ()
    by_name: str = ""

    @classmethod
    def from_json(cls, obj: dict) -> "Decision":
        _reject_unknown(obj, {"approved", "feedback", "round", "title", "content", "stage", "reviewer", "comments"})
        approved = obj.get("approved")
        if not isinstance(approved, bool):
            raise ValidationError(
                "'approved' is required and must be a JSON boolean (true or false), "
                f"got {_json_type(approved)}")
        feedback = _text(obj, "feedback", limit=MAX_FEEDBACK_CHARS, required=False)
        comments = passage_comments(obj["comments"]) if "comments" in obj else ()
        if comments and approved:
            raise ValidationError("'comments' go with a rejection: they are the writer's instructions")
        if not approved and not feedback and not comments:
            raise ValidationError("a rejection needs 'feedback' or 'comments' for the writer")
        edit = {key: obj[key] for key in ("title", "content") if key in obj}
        if edit and not approved:
            raise ValidationError("an edit ('title', 'content') goes with an approval; "
                                  "a rejection carries 'feedback' instead")
        round_ = _integer(obj, "round", low=1, high=MAX_REVIEW_ATTEMPTS, default=None)
        stage = _text(obj, "stage", limit=MAX_STAGE_NAME_CHARS, required=False) or None
        reviewer = _text(obj, "reviewer", limit=MAX_ACTOR_CHARS, required=False) or None
        return cls(approved, feedback, round_, edit=checked_edit(edit) if edit else None, stage=stage,
                   reviewer=reviewer, comments=comments)

    @classmethod
    def from_event(cls, payload: Any) -> Optional["Decision"]:
        """Read an ApprovalEvent payload (JSON text or an object); None when it is not a
        well-formed decision. Events of the previous release carry no stage, seat or
        person: they are for the stage waiting, decided by nobody named."""
        payload = durable_payload(payload)
        if not isinstance(payload, dict):
            return None
        approved, round_ = payload.get("approved"), payload.get("round")
        feedback = payload.get("feedback", "")
        if (not isinstance(approved, bool) or not isinstance(feedback, str)
                or len(feedback) > MAX_FEEDBACK_CHARS or _LONE_SURROGATE.search(feedback)
                or not (isinstance(round_, int) and not isinstance(round_, bool))):
            return None  # e.g. sent straight to the Durable API, past the routes' checks
        edit = payload.get("edit")
        if edit is not None:
            try:
                edit = checked_edit(edit) if approved and isinstance(edit, dict) and edit else None
            except ValidationError:
                return None
            if edit is None:
                return None
        stage_index, seat = _index(payload.get("stage_index")), _index(payload.get("seat"))
        person = payload.get("person") if isinstance(payload.get("person"), dict) else None
        channel = _actor(payload.get("channel"), "function key")
        try:
            comments = passage_comments(payload.get("comments") or [])
        except ValidationError:
            return None
        if comments and approved:
            return None
        return cls(approved, feedback, round_, _actor(payload.get("by"), "function key"),
                   _event_id(payload.get("id")), edit, stage_index=stage_index, seat=seat, person=person,
                   channel=channel, asserted=payload.get("asserted") is True, comments=comments,
                   by_name=display_name(payload.get("by_name")))

    def bound(self, round_: int, by: str, decision_id: str, *, stage_index: int = 0,
              seat: Optional[int] = None, person: Optional[dict] = None, channel: str = "",
              asserted: bool = False, by_name: str = "") -> "Decision":
        return replace(self, round=round_, by=by, id=decision_id, stage_index=stage_index, seat=seat,
                       person=person, channel=channel or by, asserted=asserted, by_name=by_name)

    def to_event(self) -> dict:
        return asdict(self)


def passage_comments(value: Any) -> tuple:
    """``[{"quote": "exact text of the draft", "comment": "what is wrong with it"}, ...]``
    checked for shape and size (whether each quote occurs in the draft is the decision's
    rule: routes/decisions.py and the review apply it)."""
    if not isinstance(value, list):
        raise ValidationError("'comments' must be a list of {\"quote\", \"comment\"} objects")
    if len(value) > MAX_COMMENTS_PER_DECISION:
        raise ValidationError(f"'comments' holds {len(value)} comments; at most {MAX_COMMENTS_PER_DECISION} "
                              "go with one decision")
    checked = []
    for number, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise ValidationError(f"comment {number} must be an object with \"quote\" and \"comment\"")
        try:
            _reject_unknown(item, {"quote", "comment"})
            quote = _text(item, "quote", limit=MAX_QUOTE_CHARS, required=True)
            comment = _text(item, "comment", limit=MAX_COMMENT_CHARS, required=True)
        except ValidationError as exc:
            raise ValidationError(f"comment {number}: {exc}") from None
        checked.append({"quote": quote, "comment": comment})
    return tuple(checked)


def _index(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 100 else None


def _actor(value: Any, default: str) -> str:
    if (isinstance(value, str) and value.strip() and len(value) <= MAX_ACTOR_CHARS
            and not _LONE_SURROGATE.search(value) and not _CONTROL_CHARS.search(value)):
        return value
    return default


def _event_id(value: Any) -> str:
    return value if isinstance(value, str) and _DECISION_ID.match(value) else ""


def checked_edit(edit: dict) -> dict:
    """A reviewer's edit, held to the limits of the writer's drafts."""
    unknown = set(edit) - {"title", "content"}
    if unknown:
        raise ValidationError(f"unknown field(s) in the edit: {', '.join(sorted(unknown))}")
    checked = {}
    if "title" in edit:
        checked["title"] = _text(edit, "title", limit=MAX_TITLE_CHARS, required=True)
    if "content" in edit:
        checked["content"] = Draft.from_json({"title": "-", "content": edit["content"]}).content
    return checked


@dataclass(frozen=True)
class Draft:
    title: str
    content: str

    @classmethod
    def from_json(cls, obj: Any) -> "Draft":
        if not isinstance(obj, dict):
            raise ValidationError(f"draft must be a JSON object, got {_json_type(obj)}")
        title = _text(obj, "title", limit=MAX_TITLE_CHARS, required=True)
        content = obj.get("content")
        if not isinstance(content, str) or not content.strip():
            raise ValidationError("draft 'content' is required and must be a non-empty string")
        if len(content) > MAX_CONTENT_CHARS:
            raise ValidationError(f"draft 'content' must be at most {MAX_CONTENT_CHARS} characters")
        if _LONE_SURROGATE.search(content):
            raise ValidationError("draft 'content' must be valid Unicode text (it holds a lone surrogate)")
        return cls(title, content.strip())

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CancelRequest:
    reason: str = "cancelled by the owner"
    by: str = "function key"
    id: str = ""

    @classmethod
    def from_json(cls, obj: dict) -> "CancelRequest":
        _reject_unknown(obj, {"reason"})
        reason = _text(obj, "reason", limit=MAX_CANCEL_REASON_CHARS, required="reason" in obj)
        return cls(reason or cls.reason)

    @classmethod
    def from_event(cls, payload: Any) -> Optional["CancelRequest"]:
        payload = durable_payload(payload)
        if not isinstance(payload, dict):
            return None
        reason = payload.get("reason")
        if (not isinstance(reason, str) or len(reason) > MAX_CANCEL_REASON_CHARS
                or _LONE_SURROGATE.search(reason)):
            reason = cls.reason
        return cls(reason or cls.reason, _actor(payload.get("by"), "function key"),
                   _event_id(payload.get("id")))

    def bound(self, by: str, request_id: str) -> "CancelRequest":
        return CancelRequest(self.reason, by, request_id)

    def to_event(self) -> dict:
        return asdict(self)


SEAT_CHANGES = ("claim", "release", "delegate", "reassign")


@dataclass(frozen=True)
class SeatChange:
    """A change to a seat of a stage: a member of a role or group seat claims it (or
    releases the claim), a person hands their seat on (delegate), or the owner gives a
    seat to someone else (reassign). ``to`` is the seat it becomes (``user:dave@…``);
    ``until`` is when a claim lapses. The route binds everything; the orchestrator checks
    it again against the seats as they stand when it arrives."""
    change: str
    stage: int
    seat: int
    by: str
    to: str = ""
    until: str = ""
    asserted: bool = False
    id: str = ""
    person: Optional[dict] = None
    # Made by the owner (the function key, or a signed-in owner): any claim can be
    # released and any seat reassigned.
    owner: bool = False

    @classmethod
    def from_event(cls, payload: Any) -> Optional["SeatChange"]:
        payload = durable_payload(payload)
        if not isinstance(payload, dict) or payload.get("change") not in SEAT_CHANGES:
            return None
        stage, seat = _index(payload.get("stage")), _index(payload.get("seat"))
        to, until = payload.get("to", ""), payload.get("until", "")
        if stage is None or seat is None or not isinstance(to, str) or not isinstance(until, str):
            return None
        if len(to) > MAX_ACTOR_CHARS + 6 or len(until) > 40:
            return None
        person = payload.get("person") if isinstance(payload.get("person"), dict) else None
        return cls(payload["change"], stage, seat, _actor(payload.get("by"), "function key"), to, until,
                   payload.get("asserted") is True, _event_id(payload.get("id")), person,
                   payload.get("owner") is True)

    def to_event(self) -> dict:
        return asdict(self)


NOTE_CHANGES = ("resolve", "reopen", "viewed")


@dataclass(frozen=True)
class ReviewNote:
    """Something a reviewer did that decides nothing: resolved or reopened a comment of an
    earlier round (``comment`` is its id), or opened the page of the stage under review
    for the first time (``seat``). It travels as a SeatChangeEvent, a change of its own
    kind. The route binds the round and stage it saw; the review checks it again as it
    takes it."""
    change: str
    round: int
    stage: int = 0
    comment: str = ""
    seat: int = 0
    by: str = "function key"
    person: Optional[dict] = None
    id: str = ""

    @classmethod
    def from_event(cls, payload: Any) -> Optional["ReviewNote"]:
        payload = durable_payload(payload)
        if not isinstance(payload, dict) or payload.get("change") not in NOTE_CHANGES:
            return None
        round_, stage, seat = payload.get("round"), _index(payload.get("stage", 0)), _index(payload.get("seat", 0))
        comment = payload.get("comment", "")
        if (not (isinstance(round_, int) and not isinstance(round_, bool)) or stage is None or seat is None
                or not isinstance(comment, str) or len(comment) > 20):
            return None
        person = payload.get("person") if isinstance(payload.get("person"), dict) else None
        return cls(payload["change"], round_, stage, comment, seat, _actor(payload.get("by"), "function key"), person,
                   _event_id(payload.get("id")))

    def to_event(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CommentRequest:
    """``POST /api/hitl/comments/{id}``: ``{"comment": "c2", "resolved": true|false}``."""
    comment: str
    resolved: bool
    reviewer: Optional[str] = None

    @classmethod
    def from_json(cls, obj: dict, allow_reviewer: bool = True) -> "CommentRequest":
        _reject_unknown(obj, {"comment", "resolved", "reviewer"} if allow_reviewer else {"comment", "resolved"})
        comment = _text(obj, "comment", limit=20, required=True)
        if not re.fullmatch(r"c[0-9]{1,3}", comment):
            raise ValidationError(f"'comment' is a comment's id, such as \"c1\", got {_shown(comment)}")
        resolved = obj.get("resolved")
        if not isinstance(resolved, bool):
            raise ValidationError("'resolved' is required and must be a JSON boolean: true resolves the "
                                  "comment, false reopens it")
        reviewer = _text(obj, "reviewer", limit=MAX_ACTOR_CHARS, required=False) or None
        return cls(comment, resolved, reviewer)


@dataclass(frozen=True)
class SeatRequest:
    """``POST /api/hitl/claim|delegate|reassign/{id}``: what the caller asks of a seat.
    ``seat`` is the seat's number in its stage, from 1 (as the page shows it)."""
    stage: Optional[str] = None
    seat: Optional[int] = None
    to: str = ""
    release: bool = False
    reviewer: Optional[str] = None

    @classmethod
    def from_json(cls, obj: dict, change: str) -> "SeatRequest":
        allowed = {"claim": {"stage", "release", "reviewer", "seat"}, "delegate": {"stage", "to", "reviewer", "seat"},
                   "reassign": {"stage", "seat", "to"}}[change]
        _reject_unknown(obj, allowed)
        stage = _text(obj, "stage", limit=MAX_STAGE_NAME_CHARS, required=change == "reassign") or None
        seat = _integer(obj, "seat", low=1, high=20, default=None)
        to = _text(obj, "to", limit=MAX_ACTOR_CHARS + 6, required=change != "claim")
        release = obj.get("release", False)
        if not isinstance(release, bool):
            raise ValidationError("'release' must be a JSON boolean")
        reviewer = _text(obj, "reviewer", limit=MAX_ACTOR_CHARS, required=False) or None
        return cls(stage, None if seat is None else seat - 1, to, release, reviewer)


@dataclass(frozen=True)
class AgentMessage:
    message: str
    thread_id: Optional[str] = None
    wait_for_response: Optional[bool] = None

    @classmethod
    def from_json(cls, obj: dict) -> "AgentMessage":
        _reject_unknown(obj, {"message", "thread_id", "wait_for_response"})
        message = _text(obj, "message", limit=MAX_AGENT_MESSAGE_CHARS, required=True)
        thread_id = obj.get("thread_id")
        if thread_id is not None:
            if not isinstance(thread_id, str):
                raise ValidationError("'thread_id' must be a string")
            validate_instance_id(thread_id)
        wait = obj.get("wait_for_response")
        if wait is not None and not isinstance(wait, bool):
            raise ValidationError("'wait_for_response' must be a JSON boolean")
        return cls(message, thread_id, wait)

    @classmethod
    def from_text(cls, text: str) -> "AgentMessage":
        return cls.from_json({"message": text})

