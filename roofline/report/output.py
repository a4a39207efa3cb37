"""Output files, written whole: the edge that puts text and figures on disk.

A regular file (new or existing) is written to a temp file beside it and renamed over it
only when complete, so nothing half-written is ever left:
- an existing file keeps its permission bits (a 0600 file stays private); one that belongs
  to someone else is written in place instead (its owner, group and links kept), after the
  whole output was written to a temp file;
- a symbolic link is followed: its target is what gets replaced (atomically, by a temp file
  in the target's folder), the link stays a link; a dangling link creates its target;
- a file in a folder the process may not write (but the file it may) is written in place;
- every temp file is registered while it exists (`remove_temp_files`): the CLI's signal
  thread removes them on Ctrl-C, SIGTERM or SIGHUP, even while the writer is blocked.
A stream — a FIFO, a character device (`/dev/null`), a socket, or a descriptor named by
path (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`) — is never replaced: the output is
written to a temp file first (writers that seek, PNG and Parquet, need one) and then copied
into the stream, opened to append (`-o /dev/stdout >> log` keeps the log). A FIFO that
nobody reads would block the open forever: the caller's `waiting` callback is told first.
Problems are one FieldError naming `output`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import FieldError

NAME_BYTES = 200  # of a temp file's name taken from the output's (NAME_MAX is 255)
STREAM_PREFIXES = ("/dev/fd/", "/proc/self/fd/", "/dev/stdout", "/dev/stderr")

_TEMP: set[str] = set()  # temp files that exist now (the signal thread removes them)
_TEMP_LOCK = threading.Lock()


def remove_temp_files() -> None:
    """Remove every temp file a write has open now (called when a signal ends the run)."""
    with _TEMP_LOCK:
        for path in list(_TEMP):
            with contextlib.suppress(OSError):
                os.unlink(path)
            _TEMP.discard(path)


def _register(path: str) -> None:
    with _TEMP_LOCK:
        _TEMP.add(path)


def _forget(path: str) -> None:
    with _TEMP_LOCK:
        _TEMP.discard(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _failed(output: Path, exc: OSError) -> FieldError:
    return FieldError("output", str(output), str(exc.strerror or exc))


def _stream_path(output: Path) -> bool:
    """A path that names an open descriptor (`/dev/stdout`, `/proc/self/fd/1`): a stream."""
    text = str(output)
    return text.startswith(STREAM_PREFIXES) or (
        text.startswith("/proc/") and "/fd/" in text and text.split("/")[2].isdigit()
    )


def _special(path: Path) -> bool:
    """An existing FIFO, character device or socket: written into, never replaced."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


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
    in a folder that exists and that the process may write (or an existing file it may
    write), not a read-only file. Raises FieldError naming `output`."""
    if _stream_path(output):
        return output
    try:
        target = _target(output)
        if target.is_dir():
            raise FieldError("output", str(output), "is a folder; give a file name")
        if _special(target):
            return target
        parent = target.parent
        if not parent.is_dir():
            raise FieldError("output", str(output), f"folder {parent} does not exist")
        exists = target.exists()
        if exists and not os.access(target, os.W_OK):
            raise FieldError("output", str(output), "the file exists and is not writable by you")
        if not exists and not os.access(parent, os.W_OK | os.X_OK):
            raise FieldError("output", str(output), f"cannot write in {parent}: Permission denied")
    except OSError as exc:
        raise _failed(output, exc) from None
    return target


def _temp_beside(folder: Path, name: str, suffix: str) -> str | None:
    """A new empty temp file in `folder` (registered), or None where none can be made. Its
    name is known before the file exists, so a signal at any point finds it to remove."""
    stem = os.fsencode(name)[:NAME_BYTES].decode("utf-8", "ignore")
    for _ in range(100):
        tmp = str(folder / f".{stem}.{secrets.token_hex(4)}{suffix}")
        _register(tmp)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return tmp
        except FileExistsError:  # not ours: never removed
            with _TEMP_LOCK:
                _TEMP.discard(tmp)
        except OSError:
            with _TEMP_LOCK:
                _TEMP.discard(tmp)
            return None
    return None


def _copy_into(tmp: str, destination: str, flags: int) -> None:
    fd = os.open(destination, os.O_WRONLY | flags)
    with open(tmp, "rb") as src, os.fdopen(fd, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def write_whole(
    output: Path,
    write: Callable[[str], None],
    suffix: str = ".tmp",
    waiting: Callable[[str], None] | None = None,
) -> None:
    """Call write(path) with the path to write to, so that `output` ends up whole."""
    target = writable(output)
    if _stream_path(output) or _special(target):
        _write_stream(output, target, write, suffix, waiting)
        return
    try:
        old: os.stat_result | None = target.stat()
    except OSError:
        old = None
    theirs = old is not None and old.st_uid != os.geteuid() and os.geteuid() != 0
    beside = None if theirs else _temp_beside(target.parent, target.name, suffix)
    in_place = beside is None  # then written whole elsewhere, and into the file itself
    elsewhere = _temp_beside(Path(tempfile.gettempdir()), target.name, suffix)
    tmp = beside if beside is not None else elsewhere
    if tmp is None:
        raise FieldError("output", str(output), f"cannot write in {target.parent}")
    if beside is not None and elsewhere is not None:
        _forget(elsewhere)
    try:
        write(tmp)
        if in_place:
            _copy_into(tmp, str(target), os.O_CREAT | os.O_TRUNC)
        else:
            if old is None:
                mask = os.umask(0)
                os.umask(mask)
                os.chmod(tmp, 0o666 & ~mask)
            else:
                os.chmod(tmp, stat.S_IMODE(old.st_mode))
                with contextlib.suppress(OSError):  # root gives any owner
                    os.chown(tmp, old.st_uid, old.st_gid)
            os.replace(tmp, target)
    except OSError as exc:
        raise _failed(output, exc) from None
    finally:
        _forget(tmp)


def _write_stream(
    output: Path,
    target: Path,
    write: Callable[[str], None],
    suffix: str,
    waiting: Callable[[str], None] | None,
) -> None:
    """Into a FIFO, device, socket or descriptor: written whole to a temp file, then copied
    (appended: a descriptor on a file keeps what it had). A FIFO without a reader: say so
    (waiting), then wait for one."""
    tmp = _temp_beside(Path(tempfile.gettempdir()), target.name or "stream", suffix)
    if tmp is None:
        raise FieldError("output", str(output), "cannot make a temp file to write it")
    held: int | None = None
    try:
        write(tmp)
        path = str(output) if _stream_path(output) else str(target)
        if stat.S_ISFIFO(os.stat(path).st_mode):
            try:  # held open until the copy is done, so a reader never sees an early end
                held = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                if waiting is not None:
                    waiting(f"{output} is a named pipe with no reader; waiting for one")
        _copy_into(tmp, path, os.O_APPEND)
    except OSError as exc:
        raise _failed(output, exc) from None
    finally:
        if held is not None:
            os.close(held)
        _forget(tmp)


def write_text(output: Path, text: str, waiting: Callable[[str], None] | None = None) -> None:
    def write(path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)

    write_whole(output, write, waiting=waiting)
