"""What went wrong with the database, told so the user keeps their data.

SQLite reports a read-only file, a full disk, a lock held too long and real
damage through different result codes; a user who is told "damaged, move it
aside" for a full disk abandons a healthy queue and gallery. So every SQLite
or OS error from the store is turned into one of the ``StoreError`` classes
below, each with advice that keeps data. Only ``StoreDamaged`` suggests moving
the database aside, and only after ``PRAGMA integrity_check`` has said it is
damaged; a copy of the file is kept first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import shutil
import sqlite3
from pathlib import Path

from desktop_app.domain.errors import ImageDeskError

# SQLite primary result codes (the low byte of an extended code).
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _AUTH, _NOTADB = (
    3, 5, 6, 8, 10, 11, 13, 14, 23, 26)
_DAMAGE_LINES = 5  # how many integrity_check findings to quote


class StoreError(ImageDeskError):
    """The database or an image file could not be read or written."""


class StoreReadOnly(StoreError):
    """The database file or its folder cannot be written (permissions, a read-only disk)."""


class StoreDiskFull(StoreError):
    """The disk holding the database has no room left."""


class StoreBusy(StoreError):
    """Another program held the database locked for longer than the busy timeout."""


class StoreDiskError(StoreError):
    """The disk failed a read or a write (unplugged, failing, a network drive gone)."""


class StoreDamaged(StoreError):
    """``PRAGMA integrity_check`` found the database damaged (or it is not a database).

    ``copy`` is where a copy of the damaged file was kept, if one could be made."""

    def __init__(self, message: str, copy: Path | None = None) -> None:
        super().__init__(message)
        self.copy = copy


def store_fault(error: BaseException, path: Path,
                conn: sqlite3.Connection | None = None) -> StoreError:
    """The ``StoreError`` a user should see for ``error`` raised on the database
    at ``path``. ``conn`` (when open) lets a suspected corruption be confirmed by
    an integrity check before the word "damaged" is used."""
    if isinstance(error, StoreError):
        return error
    if isinstance(error, OSError):
        return _os_fault(error, path)
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    detail = str(error)
    if primary in (_READONLY, _PERM, _AUTH, _CANTOPEN):
        return StoreReadOnly(
            f"ImageDesk cannot write its database at {path} ({detail}). Nothing was changed. "
            "Make the file and its folder writable for your user (or put the profile on a "
            "writable disk with IMAGEDESK_HOME), then try again; do not delete the database, "
            "it holds your queue and gallery.")
    if primary == _FULL:
        return _full(path, detail)
    if primary in (_BUSY, _LOCKED):
        return StoreBusy(
            f"The ImageDesk database at {path} stayed locked by another program ({detail}). "
            "Nothing was changed. Close whatever else has it open (a database browser, a "
            "backup or sync tool, a stuck ImageDesk) and try again.")
    if primary == _IOERR:
        return StoreDiskError(
            f"The disk failed while ImageDesk used its database at {path} ({detail}). "
            "Nothing was changed. Check that the disk is connected and healthy and has free "
            "space, then try again; do not delete the database, it holds your queue and "
            "gallery.")
    if primary in (_CORRUPT, _NOTADB) or (isinstance(error, sqlite3.DatabaseError) and (
            "malformed" in detail or "not a database" in detail)):
        return _confirm_damage(path, conn, detail)
    return StoreError(f"ImageDesk could not use its database at {path} ({detail}). Nothing "
                      "was changed; try again, and if it keeps happening report it with the "
                      "log file.")


def _os_fault(error: OSError, path: Path) -> StoreError:
    why = error.strerror or str(error)
    where = error.filename or path
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return _full(path, why)
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StoreReadOnly(
            f"ImageDesk cannot write its database folder ({where}: {why}). Make it writable "
            "for your user (or point IMAGEDESK_HOME at a writable folder), then try again.")
    return StoreDiskError(f"ImageDesk cannot open its database at {path} ({where}: {why}). "
                          "Check that the disk is connected and the folder exists.")


def _full(path: Path, detail: str) -> StoreDiskFull:
    return StoreDiskFull(
        f"The disk that holds the ImageDesk database ({path}) is full ({detail}). Nothing was "
        "changed and your queue and gallery are intact: free some space on that disk, then "
        "try again.")


def _confirm_damage(path: Path, conn: sqlite3.Connection | None, detail: str) -> StoreError:
    findings = _integrity_findings(path, conn)
    if findings is None:  # the check itself could not run: do not call it damaged
        return StoreDiskError(
            f"ImageDesk could not read its database at {path} ({detail}) and could not check "
            "it either. Check the disk, then try again; do not delete the database, it holds "
            "your queue and gallery.")
    if not findings:
        return StoreError(
            f"ImageDesk could not read its database at {path} ({detail}), but its integrity "
            "check finds no damage. Try again; do not delete the database, it holds your "
            "queue and gallery.")
    copy, copy_error = _keep_copy(path)
    if copy is not None:
        kept = f"A copy of it was kept as {copy}. "
    else:
        kept = (f"ImageDesk could not keep a copy of it ({copy_error}): copy {path} somewhere "
                "safe first. ")
    return StoreDamaged(
        f"The ImageDesk database at {path} is damaged or not a database (integrity check: "
        f"{'; '.join(findings)}). {kept}Then move {path} aside and restart ImageDesk to begin a "
        "fresh one; your image files stay where they are and `imagedesk gallery import "
        "FOLDER` indexes them again.", copy)


def _integrity_findings(path: Path, conn: sqlite3.Connection | None) -> list[str] | None:
    """The integrity check's complaints ([] when it says "ok"), or None when it could not
    run. Opens its own read-only connection when ``conn`` is None."""
    own = None
    try:
        if conn is None:
            own = conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                         timeout=1.0)
        if conn.in_transaction:
            conn.rollback()
        rows = conn.execute(f"PRAGMA integrity_check({_DAMAGE_LINES})").fetchall()
    except sqlite3.DatabaseError as error:
        code = getattr(error, "sqlite_errorcode", 0) or 0
        if code & 0xFF in (_CORRUPT, _NOTADB):
            return [str(error)]
        return None
    except (sqlite3.Error, OSError, ValueError):
        return None
    finally:
        if own is not None:
            own.close()
    lines = [str(r[0]) for r in rows]
    return [] if lines == ["ok"] else lines[:_DAMAGE_LINES]


def _keep_copy(path: Path) -> tuple[Path | None, str]:
    """Copy the database (and its write-ahead log) next to it, named after its last
    change, so asking twice does not make a second copy."""
    partial: Path | None = None
    try:
        stamp = dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
        copy = path.with_name(f"{path.name}.damaged-{stamp}")
        if not copy.exists():
            partial = copy.with_name(copy.name + ".partial")
            shutil.copyfile(path, partial)
            wal = path.with_name(path.name + "-wal")
            if wal.exists():
                shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
            partial.replace(copy)
        return copy, ""
    except OSError as error:
        if partial is not None:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        return None, error.strerror or str(error)
