"""What the engine refuses, each standing for the extension's exception of the same case."""
from __future__ import annotations


class EngineError(Exception):
    """An operation the extension would refuse; the message is the extension's."""


class InstanceNotFound(EngineError):
    pass


class InstanceFinished(EngineError):
    pass


class InvalidArgument(EngineError):
    """The extension's ArgumentException: a bad instance id or an unknown function."""


class InstanceAlreadyExists(EngineError):
    """DurableTask's OrchestrationAlreadyExistsException."""


class InvalidOperation(EngineError):
    """The extension's InvalidOperationException (suspend a suspended instance, ...)."""
