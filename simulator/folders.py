"""Results folders that relcomm owns: the marker, the checks made before any work, a lock, staging and publication.

Rules (DESIGN §4, ownership of output folders):

* A results folder carries a marker file, :data:`MARKER`, written by relcomm (tool, version,
  kind of folder, the command, the time). A command may replace a path only when it is missing,
  an empty folder, or a folder with that marker; anything else is refused with a one-line
  :class:`~simulator.errors.ScenarioError` before any work. Nothing without the marker is
  ever deleted or renamed.
* The target is checked before work (:func:`check_target`): not a file, not a symbolic link,
  not the working folder or a folder above it, its parent a folder (or creatable) and writable.
* One writer at a time: :func:`claim` holds an exclusive lock file ``.<name>.lock`` beside the
  folder for the command's lifetime (``flock``; the OS releases it when the process dies, so a
  killed run never blocks the next one). A second writer is refused with one line.
* A folder replaced as a whole (``run``, ``stitch``) is written into a marked staging folder
  ``.<name>.tmp-*`` beside it and swapped in when complete; a staging folder left by a killed
  run is removed by the next command that claims the same folder (it holds the lock, so no
  live writer owns it). Folders filled in place (``sweep``, ``tradeoff``, ``plot``) are marked
  when created.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from simulator import __version__
from simulator.errors import ScenarioError
from simulator.results import write_json

MARKER = ".relcomm-results.json"
"""Name of the marker file at the top of every folder relcomm made for results."""

_MARKER_MAX_BYTES = 64 * 1024


def is_marked(folder: Path) -> bool:
    """True when ``folder`` is a real folder holding a readable relcomm marker."""
    marker = Path(folder) / MARKER
    try:
        if folder.is_symlink() or not folder.is_dir() or marker.is_symlink() or not marker.is_file():
            return False
        if marker.stat().st_size > _MARKER_MAX_BYTES:
            return False
        return json.loads(marker.read_text(encoding="utf-8")).get("tool") == "relcomm"
    except (OSError, ValueError, AttributeError):
        return False


def mark(folder: Path, kind: str) -> None:
    """Write the marker into ``folder`` (created if missing); a marker already there is kept."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if is_marked(folder):
        return
    write_json(folder / MARKER, {"tool": "relcomm", "version": __version__, "kind": kind,
                                 "command": shlex.join(["relcomm", *sys.argv[1:]]),
                                 "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def _is_empty_dir(path: Path) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except OSError:
        return False


def _where(path: Path, field: str | None) -> str:
    return f"{field} {path}" if field else str(path)


def check_target(path: Path | str, field: str | None = None, *, inside_results: bool = False) -> Path:
    """Refuse (``ScenarioError``, one line) a results path that relcomm may not write; return it.

    Parameters
    ----------
    path : Path
        Where a command would write its results folder.
    field : str, optional
        What named the path (``--out``, ``name``, ``outputs.dir``): the error names it.
    inside_results : bool
        Also accept an existing folder whose *parent* is marked (``plots/`` of a results folder).

    The path is accepted when it is missing, an empty folder or a marked folder, is not a
    symbolic link, does not hold the working folder, and its nearest existing ancestor is a
    folder this process can write into (so that it can be made, locked and swapped).
    """
    path = Path(path)
    where = _where(path, field)
    if str(path).strip() == "" or "\x00" in str(path):
        raise ScenarioError("is not a usable folder path", path=where)
    absolute = Path(os.path.abspath(path))
    cwd = Path(os.path.abspath(os.getcwd()))
    if absolute == cwd or absolute in cwd.parents:
        raise ScenarioError("is the working folder or a folder above it; give a new folder for the results",
                            path=where)
    if path.is_symlink():
        raise ScenarioError("is a symbolic link; give the folder itself or a new path", path=where)
    if path.exists():
        if not path.is_dir():
            raise ScenarioError("is a file, not a folder; give a new folder for the results", path=where)
        if not (_is_empty_dir(path) or is_marked(path) or (inside_results and is_marked(absolute.parent))):
            raise ScenarioError(f"exists and was not made by relcomm (no {MARKER} marker); relcomm writes only "
                                "into a new or empty folder or one of its own results folders, and deletes "
                                "nothing else: choose another folder", path=where)
        if not os.access(path, os.W_OK | os.X_OK):
            raise ScenarioError("is not writable", path=where)
    ancestor = absolute.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        if ancestor.is_symlink():  # a dangling link on the way
            raise ScenarioError(f"{ancestor} is a broken symbolic link", path=where)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ScenarioError(f"{ancestor} is a file, so no folder can be made under it", path=where)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ScenarioError(f"cannot write into {ancestor} (permission denied or read-only)", path=where)
    return path


_LOCK_TAG = b"relcomm lock"
"""First bytes of a lock file relcomm wrote: only such a file (or an empty one) is used and removed."""


class _FolderLock:
    """An exclusive ``flock`` on ``.<name>.lock`` beside a folder; the file is removed on release.

    A file of that name that relcomm did not write (not empty, not starting with
    :data:`_LOCK_TAG`) is the user's: it is neither written nor removed, and the claim is refused.
    """

    def __init__(self, folder: Path):
        self.path = folder.parent / f".{folder.name}.lock"
        self.folder = folder
        self.fd: int | None = None

    def acquire(self) -> None:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as exc:  # a folder, a link or an unwritable file of that name: not ours
                raise ScenarioError(f"cannot use {self.path.name} beside it as relcomm's lock "
                                    f"({exc.strerror or exc}); move it away or choose another folder",
                                    path=str(self.folder)) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    raise ScenarioError(f"another relcomm command is writing this folder now (lock {self.path.name} "
                                        "is held); wait for it to finish or choose another folder",
                                        path=str(self.folder)) from None
                raise
            try:  # the holder before us may have removed the file after we opened it: lock the live one
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                held = os.pread(fd, len(_LOCK_TAG), 0)
                if held and not held.startswith(_LOCK_TAG):
                    os.close(fd)
                    raise ScenarioError(f"{self.path.name} beside it is a file relcomm did not make; move it away "
                                        "or choose another folder", path=str(self.folder))
                os.ftruncate(fd, 0)
                os.write(fd, _LOCK_TAG + f" pid {os.getpid()}\n".encode())
                self.fd = fd
                return
            os.close(fd)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)  # closing releases the flock, after the unlink (see acquire)
        self.fd = None


def remove_leftovers(parent: Path, name: str = "*") -> list[Path]:
    """Remove staging (``.<name>.tmp-*``) and swapped-out (``.<name>.old-*``) folders in ``parent``.

    Only folders that carry the marker, or are empty, are removed (a staging folder is marked
    as soon as it is made). Call it only while holding the lock of ``parent / name`` (or of
    ``parent``'s own folder for ``name="*"``), so that no live writer owns them.
    """
    removed = []
    stem = name if name == "*" else glob.escape(name)
    for pattern in (f".{stem}.tmp-*", f".{stem}.old-*"):
        for path in Path(parent).glob(pattern):
            if path.is_symlink() or not path.is_dir():
                continue
            if is_marked(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            elif _is_empty_dir(path):
                path.rmdir()
                removed.append(path)
    return removed


@dataclass
class Claim:
    """A results folder checked and locked by :func:`claim`; write it with :meth:`staging` or :meth:`in_place`."""

    path: Path
    kind: str

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A marked staging folder beside the target, swapped into place when the block ends without error.

        On an error the staging folder is removed and the target left as it was.
        """
        parent = self.path.parent
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self.path.name}.tmp-"))
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; results are ordinary files
            mark(staging, self.kind)
            yield staging
            self._publish(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _publish(self, staging: Path) -> None:
        target = self.path
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            raise ScenarioError("became a file or link while relcomm ran; results not published", path=str(target))
        if target.exists():
            if is_marked(target):
                old = target.with_name(f".{target.name}.old-{time.time_ns()}")
                target.rename(old)
                staging.rename(target)
                shutil.rmtree(old, ignore_errors=True)
                return
            try:
                target.rmdir()  # fails unless empty: something was put there meanwhile, keep it
            except OSError:
                raise ScenarioError("was filled by someone else while relcomm ran; nothing of it was touched "
                                    "and the results were not published", path=str(target)) from None
        staging.rename(target)

    def in_place(self) -> Path:
        """Make (or keep) the folder and mark it, for commands that fill it file by file."""
        mark(self.path, self.kind)
        return self.path


@contextmanager
def claim(path: Path | str, kind: str, *, field: str | None = None, inside_results: bool = False) -> Iterator[Claim]:
    """Check ``path`` (:func:`check_target`), lock it for the block, and remove dead runs' leftovers.

    Parameters
    ----------
    path : Path
        The results folder.
    kind : str
        What the folder holds (``run``, ``stitch``, ``sweep``, ``tradeoff``, ``plots``): written
        into the marker.
    field : str, optional
        What named the path, for the error (see :func:`check_target`).
    inside_results : bool
        See :func:`check_target`.
    """
    path = check_target(path, field, inside_results=inside_results)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = _FolderLock(path)
    lock.acquire()
    try:
        check_target(path, field, inside_results=inside_results)  # again, now that no other relcomm writes it
        remove_leftovers(path.parent, path.name)
        yield Claim(path, kind)
    finally:
        lock.release()


__all__ = ["MARKER", "Claim", "check_target", "claim", "is_marked", "mark", "remove_leftovers"]
