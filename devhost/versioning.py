"""Orchestration versioning: which version an instance gets, and whether this host runs it.

host.json's ``extensions.durableTask`` carries ``defaultVersion`` (none by default),
``versionMatchStrategy`` (``CurrentOrOlder``) and ``versionFailureStrategy`` (``Reject``),
as the extension's ``DurableTaskOptions`` declares them. An instance is created with the
version its starter asked for, else ``defaultVersion``; before every episode DurableTask.Core's
``TaskOrchestrationDispatcher`` compares the instance's version with this host's
``defaultVersion`` under the match strategy, and on a mismatch either abandons the work item
to be retried (Reject) or fails the instance (Fail). The comparison is
``VersioningSettings.CompareVersions``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional

from .history import EventType

MATCH_STRATEGIES = ("None", "Strict", "CurrentOrOlder")
FAILURE_STRATEGIES = ("Reject", "Fail")
# FailureDetails("VersionMismatch", ...) of TaskOrchestrationDispatcher.
MISMATCH_ERROR_TYPE = "VersionMismatch"
MISMATCH_MESSAGE = "Orchestration version did not comply with Worker Versioning"
# Azure Storage keeps a failure's details as the output, "{ErrorType}: {ErrorMessage}".
MISMATCH_OUTPUT = f"{MISMATCH_ERROR_TYPE}: {MISMATCH_MESSAGE}"
# devhost: how long rejected work waits before it is offered again.
REJECT_RETRY_SECONDS = 10.0
# System.Version: two to four non-negative integer components.
_DOTNET_VERSION = re.compile(r"^\s*\d+(\.\d+){1,3}\s*$")


class VersioningConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Versioning:
    default_version: Optional[str] = None
    match: str = "CurrentOrOlder"
    failure: str = "Reject"

    @classmethod
    def from_durable_task(cls, durable: dict) -> "Versioning":
        """From host.json's durableTask section; enum names are read ignoring case (and as
        numbers), as the .NET configuration binder reads them."""
        default = durable.get("defaultVersion")
        return cls(None if default is None else _configuration_text(default),
                   _strategy(durable, "versionMatchStrategy", MATCH_STRATEGIES, cls.match),
                   _strategy(durable, "versionFailureStrategy", FAILURE_STRATEGIES, cls.failure))

    def complies(self, instance_version: Optional[str]) -> bool:
        if self.match == "Strict":
            return instance_version == self.default_version
        if self.match == "CurrentOrOlder":
            return compare_versions(instance_version, self.default_version) <= 0
        return True


def _configuration_text(value) -> str:
    """A host.json value as the Functions host hands it to the extension: the text of its
    JSON token (``JValue.ToString`` with the invariant culture), so 1.0 is "1"."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value).upper()
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _strategy(durable: dict, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = durable.get(key)
    if value is None:
        return default
    text = str(value).strip()
    if text.isdigit() and int(text) < len(allowed):
        return allowed[int(text)]
    for name in allowed:
        if name.lower() == text.lower():
            return name
    raise VersioningConfigError(f"extensions.durableTask.{key} must be one of "
                                f"{', '.join(allowed)}, got {value!r}")


def compare_versions(source: Optional[str], target: Optional[str]) -> int:
    """``VersioningSettings.CompareVersions``: an empty version is older than any other;
    two System.Version strings compare by component (an absent one, -1, is older than 0);
    anything else compares as text, ignoring case."""
    source_empty, target_empty = not (source or "").strip(), not (target or "").strip()
    if source_empty or target_empty:
        return 0 if source_empty and target_empty else (-1 if source_empty else 1)
    if _DOTNET_VERSION.match(source) and _DOTNET_VERSION.match(target):
        return _sign(_components(source), _components(target))
    return _sign(source.upper(), target.upper())


def _components(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in version.strip().split(".")]
    return tuple(parts + [-1] * (4 - len(parts)))


def _sign(a, b) -> int:
    return (a > b) - (a < b)


def execution_started(events: list[dict]) -> Optional[dict]:
    """The execution's ExecutionStarted, whose Version the SDK reads as ``context.version``."""
    return next((e for e in events if e.get("EventType") == EventType.EXECUTION_STARTED), None)
