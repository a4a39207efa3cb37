"""Output files, written whole: the edge that puts text and figures on disk.

A regular file (new or existing) is written to a temp file beside it and renamed over it
only when complete, so nothing half-written is ever left. A FIFO, character device or
socket (`/dev/null`, a pipe) is written into directly and never replaced. Problems are one
FieldError naming `output`.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import FieldError


def _readable(path: str) -> None:
    """Give a temp file the permissions a plain open() would have (mkstemp makes it 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _special(path: Path) -> bool:
    """An existing FIFO, character device or socket: written into, never replaced."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def write_whole(output: Path, write: Callable[[str], None], suffix: str = ".tmp") -> None:
    """Call write(path) with the path to write to, so that `output` ends up whole."""
    if output.is_dir():
        raise FieldError("output", str(output), "is a folder; give a file name")
    if _special(output):
        try:
            write(str(output))
        except OSError as exc:
            raise FieldError("output", str(output), str(exc.strerror or exc)) from None
        return
    parent = output.resolve().parent
    if not parent.is_dir():
        raise FieldError("output", str(output), f"folder {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{output.name}.", suffix=suffix)
    except OSError as exc:
        raise FieldError(
            "output", str(output), f"cannot write in {parent}: {exc.strerror or exc}"
        ) from None
    os.close(fd)
    try:
        write(tmp)
        _readable(tmp)
        os.replace(tmp, output)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FieldError("output", str(output), str(exc.strerror or exc)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(output: Path, text: str) -> None:
    def write(path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)

    write_whole(output, write)
