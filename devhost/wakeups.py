"""Wake-ups across host processes: tell the process that owns an instance it has new work.

With several worker processes (``--workers``) any process may accept a request for any
instance, but only the owner of the instance's shard runs it. After committing, the
accepting process sends a one-byte datagram to the owner, so the owner does not wait for
its next idle poll. The sockets live in Linux's abstract namespace: no files to clean up
after a crash, no path-length limit.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from typing import Callable

from .storage import Shard

log = logging.getLogger("devhost")


class CrossProcessWakeups:
    """Sends wake-ups to the other processes; receives its own on the given event loop."""

    def __init__(self, database_path: str, shard: Shard, wake_local: Callable[[], None],
                 loop: asyncio.AbstractEventLoop):
        self.shard = shard
        self._wake_local = wake_local
        self._loop = loop
        tag = hashlib.sha1(database_path.encode()).hexdigest()[:16]
        self._addresses = [f"\0devhost-{tag}-{index}" for index in range(shard.count)]
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self._addresses[shard.index])
        self._socket.setblocking(False)
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)
        loop.call_soon_threadsafe(loop.add_reader, self._socket.fileno(), self._receive)

    def notify(self, instance_id: str) -> None:
        owner = self.shard.owner_of(instance_id)
        if owner == self.shard.index:
            self._wake_local()
            return
        try:
            self._sender.sendto(b"!", self._addresses[owner])
        except OSError:  # the owner is restarting, or its queue is full of wake-ups already
            log.debug("no wake-up delivered to worker %d", owner)

    def close(self) -> None:
        """Call once the loop has stopped."""
        self._loop.remove_reader(self._socket.fileno())
        self._socket.close()
        self._sender.close()

    def _receive(self) -> None:
        # However many wake-ups queued up, one pass over the due work answers them all.
        try:
            while self._socket.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        self._wake_local()
