"""What /proc says about processes, and what machine a benchmark ran on.

Everything here reads files; a process that is gone gives None (or is left out), never an
exception, because the crash soak kills host processes while they are being measured.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import subprocess
from pathlib import Path
from typing import Optional

from bench import REPO

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, field_name: str) -> Optional[int]:
    """A ``VmHWM``/``VmRSS`` line of /proc/<pid>/status in kB; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def stat_fields(path: Path) -> Optional[list[str]]:
    """The fields of a /proc/<pid>/stat (or task stat) file after the command name: index 0
    is field 3 (state); None once the process is gone."""
    try:
        with open(path, encoding="ascii") as stat:
            # The command name may hold spaces; the fields after its closing ')' do not.
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def cpu_seconds_of(fields: list[str]) -> float:
    """User + system CPU seconds from the fields ``stat_fields`` returned."""
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def start_time_of(fields: list[str]) -> int:
    """The process's start time in clock ticks since boot: with the pid, it names one
    process even after the pid is reused."""
    return int(fields[19])


def cpu_seconds(path: Path) -> Optional[float]:
    """User + system CPU seconds from a /proc stat file; None once the process is gone."""
    fields = stat_fields(path)
    return None if fields is None else cpu_seconds_of(fields)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each live thread of a process, by thread id."""
    cpu = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return cpu
    for task in tasks:
        seconds = cpu_seconds(task / "stat")
        if seconds is not None:
            cpu[task.name] = seconds
    return cpu


def processes_with_argument(flag: str, value: str) -> dict[int, list[str]]:
    """Live processes whose command line holds ``flag value``, pid -> argv.

    A zombie has no command line, so a dead process that is not reaped yet is not found.
    """
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if flag in argv and argv[argv.index(flag) + 1:][:1] == [value]:
            found[int(entry.name)] = argv
    return found


def loopback_listeners(port: int) -> int:
    """Sockets listening on 127.0.0.1:port (one per host process with SO_REUSEPORT)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp", encoding="ascii") as table:
        return sum(1 for line in table
                   if line.split()[1:2] == [local] and line.split()[3] == "0A")


def client_cpu_seconds() -> float:
    """CPU seconds this (the benchmark client's) process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                                capture_output=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "aiohttp": importlib.metadata.version("aiohttp"), "commit": commit}
