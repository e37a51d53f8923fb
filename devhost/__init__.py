"""devhost: run a Python Durable Functions app locally, without Core Tools, .NET or Azure."""
from .clock import ManualClock, SystemClock

__all__ = ["DevHost", "ManualClock", "SystemClock"]


def __getattr__(name: str):
    # Imported on first use, so that ``python -m devhost`` can explain a missing package
    # (the SDK, azure-functions, aiohttp) instead of failing on import with a traceback.
    if name == "DevHost":
        from .host import DevHost
        return DevHost
    raise AttributeError(f"module 'devhost' has no attribute {name!r}")
