"""The process around the command line: `main`, the signal watcher, closed and broken
streams, the last flush. Nothing here imports typer, numpy or the commands: `roofline
--version` is answered before any of them load (the frame and the commands, app.py and one
module per group, are imported for everything else), and the library modules a command
needs are imported inside the command."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from typing import NoReturn


def say(line: str) -> None:
    """One line on stderr, if stderr can still take it (closed, full or gone: nothing)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _above_stdio(fd: int) -> int:
    """A descriptor moved above 0, 1 and 2: with stderr closed (`2>&-`) a new pipe would
    take descriptor 2, and Python's stderr would write into it."""
    import fcntl

    if fd > 2:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved


def _remove_temp_files() -> None:
    """The temp files of writes under way (report/output.py registers them); none where
    that module was never imported."""
    output = sys.modules.get("roofline.report.output")
    if output is not None:
        output.remove_temp_files()


def _watch_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP (those not ignored when the command started: `nohup`
    keeps working) end the command from a thread of their own: the signal's C handler, in
    whichever thread receives it, writes its number to a pipe (signal.set_wakeup_fd); the
    thread reading it removes the temp files of any write under way and ends the command
    with one line, exit code 128 + the signal, even while the main thread is blocked in a
    write (a full pipe) or a second signal comes."""
    import threading

    names = ("SIGINT", "SIGTERM", "SIGHUP")
    wanted = [getattr(signal, n) for n in names if hasattr(signal, n)]
    wanted = [s for s in wanted if signal.getsignal(s) is not signal.SIG_IGN]
    if not wanted:
        return
    read, write = (_above_stdio(fd) for fd in os.pipe())
    os.set_blocking(write, False)
    for signum in wanted:
        signal.signal(signum, lambda number, frame: None)  # the watcher does the work
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)

    def watch() -> None:
        while True:
            data = os.read(read, 1)
            if data and data[0] in wanted:
                break
        signum = data[0]
        _remove_temp_files()
        with contextlib.suppress(OSError):
            os.write(2, f"roofline: interrupted by {signal.Signals(signum).name}\n".encode())
        os._exit(128 + signum)

    threading.Thread(target=watch, name="roofline-signals", daemon=True).start()


class _Closed:
    """Standard output when it is closed (`>&-`): every write fails with one line."""

    closed = True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "standard output is closed")

    @property
    def buffer(self) -> _Closed:  # the binary side (what-if rows): closed as well
        return self


def main() -> None:
    _watch_signals()
    if sys.stdout is None:
        sys.stdout = _Closed()
    try:
        _main()
    finally:  # the interpreter's last flush of a broken, full or closed stream: quietly
        for fd, name in ((1, "stdout"), (2, "stderr")):
            stream = getattr(sys, name)
            try:
                if stream is not None:
                    stream.flush()
            except Exception:
                null = os.open(os.devnull, os.O_WRONLY)
                with contextlib.suppress(OSError):
                    os.dup2(null, fd)  # what is left in the buffers goes nowhere
                os.close(null)
                setattr(sys, name, None)


def _main() -> None:
    # a terminal or pipe that cannot encode a character (PYTHONIOENCODING=ascii) shows '?'
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    if sys.argv[1:] == ["--version"]:
        _version()
    from . import commands

    commands()()


def _version() -> None:
    """`roofline --version` without typer: the same line, and the same answers to a closed,
    full or broken stdout as the typer group gives (app.OneLineErrors)."""
    from .. import __version__

    try:
        stream = sys.stdout
        stream.write(f"roofline {__version__}\n")
        stream.flush()
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # `| head -0`: a quiet exit 1, as click has it
            sys.exit(1)
        stdout_failed(exc)
    except ValueError as exc:
        stdout_failed(exc)
    sys.exit(0)


def stdout_failed(exc: OSError | ValueError) -> NoReturn:
    """A standard output that failed (not writable, or Python's own stdout object over a
    closed descriptor): one line and exit 2; any other ValueError goes on."""
    if isinstance(exc, ValueError):
        if "closed file" not in str(exc):
            raise exc
        say("roofline: error: cannot write to standard output: standard output is closed")
    else:
        say(f"roofline: error: cannot write to standard output: {exc.strerror or exc}")
    sys.exit(2)
