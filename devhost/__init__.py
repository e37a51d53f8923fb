"""devhost: run a Python Durable Functions app locally, without Core Tools, .NET or Azure."""
from .clock import ManualClock, SystemClock
from .host import DevHost

__all__ = ["DevHost", "ManualClock", "SystemClock"]
