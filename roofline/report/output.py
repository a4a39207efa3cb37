"""Output files, written whole: the edge that puts text and figures on disk.

A regular file (new or existing) is written to a temp file beside it and renamed over it
only when complete, so nothing half-written is ever left:
- an existing file keeps its permission bits (a 0600 file stays private) and, where the
  process may, its owner and group;
- a symbolic link is followed: its target is what gets replaced (atomically, by a temp file
  in the target's folder), the link stays a link; a dangling link creates its target;
- the temp file is removed whatever ends the write: an error, Ctrl-C, or SIGTERM/SIGHUP
  (the CLI turns those into an exception, `Interrupted`, so this cleanup runs).
A FIFO, character device or socket (`/dev/null`, a pipe) is written into directly and never
replaced. A FIFO that nobody reads would block the open forever: the caller's `waiting`
callback is told first (the CLI says so on stderr), then the open waits for a reader.
Problems are one FieldError naming `output`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import FieldError


class Interrupted(BaseException):
    """A signal (SIGINT, SIGTERM, SIGHUP) ended the command. A BaseException, like
    KeyboardInterrupt, so only cleanup code (finally, except BaseException) sees it."""

    def __init__(self, signum: int, name: str) -> None:
        self.signum = signum
        self.name = name
        super().__init__(name)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait (pending) while the block runs."""
    held = {signal.SIGINT, signal.SIGTERM} | (
        {signal.SIGHUP} if hasattr(signal, "SIGHUP") else set()
    )
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _mode_for_new(path: str) -> None:
    """Give a temp file the permissions a plain open() would have (mkstemp makes it 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _keep_owner_and_mode(path: str, old: os.stat_result) -> None:
    """The replaced file's permission bits, and its owner and group where allowed (root may
    give any; anyone may keep their own uid and one of their groups)."""
    os.chmod(path, stat.S_IMODE(old.st_mode))
    if hasattr(os, "chown"):
        # not ours to give: the file becomes the writer's, its mode kept
        with contextlib.suppress(OSError):
            os.chown(path, old.st_uid, old.st_gid)


def _special(path: Path) -> bool:
    """An existing FIFO, character device or socket: written into, never replaced."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def _reader_present(path: Path) -> int | None:
    """For a FIFO: an open write end (a descriptor) if a reader is there now, else None."""
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader yet
            return None
        raise


def _target(output: Path) -> Path:
    """Where the bytes go: a symbolic link's final target (a chain of links followed; a loop
    refused), or the path itself."""
    if not output.is_symlink():
        return output
    try:
        target = Path(os.path.realpath(output, strict=False))
    except (OSError, RuntimeError) as exc:
        raise FieldError("output", str(output), f"cannot follow the link: {exc}") from None
    if target.is_symlink():  # realpath stops at a loop and leaves a link
        raise FieldError("output", str(output), "is a symbolic link that loops")
    return target


def writable(output: Path) -> Path:
    """The path the bytes of `output` will go to, once checked that they can: not a folder,
    in a folder that exists, not a read-only file. Raises FieldError naming `output`."""
    target = _target(output)
    if target.is_dir():
        raise FieldError("output", str(output), "is a folder; give a file name")
    if _special(target):
        return target
    if not target.parent.is_dir():
        raise FieldError("output", str(output), f"folder {target.parent} does not exist")
    if target.exists() and not os.access(target, os.W_OK):
        raise FieldError("output", str(output), "the file exists and is not writable by you")
    return target


def write_whole(
    output: Path,
    write: Callable[[str], None],
    suffix: str = ".tmp",
    waiting: Callable[[str], None] | None = None,
) -> None:
    """Call write(path) with the path to write to, so that `output` ends up whole."""
    target = writable(output)
    if _special(target):
        _write_special(output, target, write, waiting)
        return
    parent = target.parent
    try:
        old: os.stat_result | None = target.stat()
    except OSError:
        old = None
    tmp = ""
    try:
        # the name is in `tmp` before the file exists, so a signal at any point finds it
        # for the cleanup below (mkstemp would create the file before returning its name)
        for _ in range(100):
            tmp = str(parent / f".{target.name}.{secrets.token_hex(4)}{suffix}")
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                break
            except FileExistsError:  # not ours: never removed
                tmp = ""
            except OSError as exc:
                tmp = ""
                raise FieldError(
                    "output", str(output), f"cannot write in {parent}: {exc.strerror or exc}"
                ) from None
        else:
            raise FieldError("output", str(output), f"no free temp file name in {parent}")
        write(tmp)
        if old is None:
            _mode_for_new(tmp)
        else:
            _keep_owner_and_mode(tmp, old)
        os.replace(tmp, target)
        tmp = ""
    except OSError as exc:
        raise FieldError("output", str(output), str(exc.strerror or exc)) from None
    finally:
        if tmp:
            with _signals_held():  # a second Ctrl-C does not stop the cleanup
                Path(tmp).unlink(missing_ok=True)


def _write_special(
    output: Path,
    target: Path,
    write: Callable[[str], None],
    waiting: Callable[[str], None] | None,
) -> None:
    """Write into a FIFO, character device or socket. A FIFO without a reader: say so
    (waiting), then wait for one; the write end opened first is held until the write is
    done, so the reader never sees an early end of file."""
    held: int | None = None
    try:
        if stat.S_ISFIFO(target.stat().st_mode):
            held = _reader_present(target)
            if held is None:
                if waiting is not None:
                    waiting(f"{output} is a named pipe with no reader; waiting for one")
                held = os.open(target, os.O_WRONLY)  # blocks until a reader opens it
        write(str(target))
    except OSError as exc:
        raise FieldError("output", str(output), str(exc.strerror or exc)) from None
    finally:
        if held is not None:
            os.close(held)


def write_text(output: Path, text: str, waiting: Callable[[str], None] | None = None) -> None:
    def write(path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)

    write_whole(output, write, waiting=waiting)
