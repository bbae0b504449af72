"""One run per checkpoint folder: a lock file held for the run's life (private).

``RunLock`` is what [`visionkit.training.train`][visionkit.training.train] holds on
``checkpoint_dir`` while it trains, so that a second run started on the same folder stops
at once with [`CheckpointLockedError`][visionkit.errors.CheckpointLockedError] instead of
writing the folder too.

The lock is the file ``lock.json`` in the folder, holding the holder's ``pid``, ``host``,
``started`` (ISO time) and, where ``/proc`` has it, the process start time (to tell a
reused pid from the holder). On POSIX the file is also locked with ``fcntl.flock``: the
kernel releases that lock when the process dies (``SIGKILL``, a crash, power loss), so a
lock file left behind by a killed run is recognised as stale and taken over, and a run
killed at any instant resumes. Without ``flock`` (Windows, or a filesystem that refuses
it) the file is created with ``O_CREAT | O_EXCL`` and a holder on this host is stale when
its pid is gone or belongs to another process; one on another host cannot be checked, so
the run is refused and the message says how to remove the lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from . import _validate as V
from .errors import CheckpointLockedError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "RunLock"]

LOCK_FILE = "lock.json"
_HELD: set[str] = set()  # lock files held by this process (flock does not see a second open in-process on every OS)


class RunLock:
    """Hold ``folder/lock.json`` while a run writes ``folder``; a context manager.

    Parameters
    ----------
    folder : str or os.PathLike
        The checkpoint folder (created if missing).

    Raises
    ------
    CheckpointLockedError
        From ``acquire``: another live run holds the folder
        (the message names it: pid, host, start time), or a holder on another host that
        cannot be checked.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> RunLock:
        """Take the lock (taking over a stale one, with a ``RuntimeWarning``); return ``self``."""
        if self.folder.exists() and not self.folder.is_dir():
            raise V.fail("checkpoint_dir", "a folder (it is created if missing)", str(self.folder))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            key = str(self.path.resolve())
            if key in _HELD:
                raise self._refusal(_read(self.path), "this process is already training into it")
            for _ in range(10):  # another process may take or release it between our steps: try again
                fd = self._open_flocked() if fcntl is not None else None
                if fd is None:
                    fd = self._open_exclusive()
                if fd is not None:
                    self._fd = fd
                    _HELD.add(key)
                    return self
        except OSError as exc:
            # a read-only or full folder: say which, instead of the bare OSError
            raise V.fail("checkpoint_dir", "a folder this process can write (it holds the run's lock, "
                         f"weights and state; {type(exc).__name__}: {exc.strerror or exc})", str(self.folder)) from exc
        raise self._refusal(_read(self.path), "it kept changing hands while this run tried to take it")

    def release(self) -> None:
        """Remove the lock file and let go of the lock (nothing if not held)."""
        if self._fd is None:
            return
        _HELD.discard(str(self.path.resolve()))
        with contextlib.suppress(OSError):
            if os.fstat(self._fd).st_ino == self.path.stat().st_ino:
                self.path.unlink()  # while still holding the flock, so nobody takes a file about to vanish
        os.close(self._fd)
        self._fd = None

    # ------------------------------------------------------------------ the two ways

    def _open_flocked(self) -> int | None:
        """Open and flock the lock file; ``None`` if flock is not supported here (use O_EXCL)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise self._refusal(_read(self.path), "its file lock is held") from None
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                return self._open_exclusive()
            raise
        try:
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:  # removed or replaced meanwhile
                os.close(fd)
                return None
        except FileNotFoundError:
            os.close(fd)
            return None
        holder = _read(self.path)
        if holder and _alive_elsewhere(holder, proven=True) == "alive":  # a filesystem where flock is a no-op
            os.close(fd)
            raise self._refusal(holder, "its process is running")
        self._warn_taken_over(holder, "its file lock was released when its process ended")
        _write(fd, _me())
        return fd

    def _open_exclusive(self) -> int | None:
        """Create the lock file with O_EXCL; on a stale one remove it and return ``None`` (try again)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read(self.path)
            state = _alive_elsewhere(holder) if holder else "unknown"
            if state != "dead":
                why = "its process is running" if state == "alive" else "whether its process still runs cannot be checked"
                raise self._refusal(holder, why) from None
            self._warn_taken_over(holder, "its process is gone")
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return None
        _write(fd, _me())
        return fd

    # ------------------------------------------------------------------ messages

    def _refusal(self, holder: dict[str, Any] | None, why: str) -> CheckpointLockedError:
        return CheckpointLockedError(
            f"Checkpoint folder '{self.folder}' is in use by another run ({_describe(holder)}; {why}), and two "
            f"runs must not write one folder. Wait for that run to end, or use another `checkpoint_dir`. If no "
            f"run uses this folder any more, delete the lock file '{self.path}' and start again."
        )

    def _warn_taken_over(self, holder: dict[str, Any] | None, why: str) -> None:
        if holder:
            warnings.warn(f"Checkpoint folder '{self.folder}': took over the lock left by {_describe(holder)} "
                          f"({why}).", RuntimeWarning, stacklevel=4)


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return f"holder unknown: the lock file '{LOCK_FILE}' is empty or unreadable"
    return f"pid {holder.get('pid')} on host {holder.get('host')!r}, started {holder.get('started')}"


def _me() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "process_start": _process_start(pid)}


def _write(fd: int, holder: dict[str, Any]) -> None:
    data = json.dumps(holder).encode()
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)
    with contextlib.suppress(OSError):
        os.fsync(fd)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive_elsewhere(holder: dict[str, Any], *, proven: bool = False) -> str:
    """``"alive"``, ``"dead"`` or ``"unknown"`` for a holder other than this process.

    ``proven``: ``"alive"`` only when the process start time is known and matches (so a
    reused pid never keeps a lock that flock already says is free).
    """
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return "unknown"
    if pid == os.getpid():
        return "dead"  # left by this process (its holder would be in _HELD)
    if not _pid_exists(pid):
        return "dead"
    recorded, now = holder.get("process_start"), _process_start(pid)
    if recorded is None or now is None:
        return "dead" if proven else "alive"
    return "alive" if recorded == now else "dead"


def _pid_exists(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.GetLastError() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (``/proc/PID/stat`` field 22), where readable."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
