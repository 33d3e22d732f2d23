"""When the output folder refuses a finished job's images (read-only, full, gone).

The images are already made, and on a cloud provider already paid for, so they
are not thrown away: they are written to a folder of the profile's own
("unsaved"), and the job fails with a reason that says what is wrong with the
output folder, what to fix, and where the images are. Only when that folder
cannot take them either does the message say they are lost.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from desktop_app.store.faults import StoreError
from desktop_app.store.files import write_image_atomic

FIX = ("make room or make it writable, or choose another output folder in Settings → "
       "Output (or IMAGEDESK_OUTPUT__FOLDER), then retry the job")


class OutputFolderUnusable(StoreError):
    """A job's images could not be saved in the output folder; ``kept`` lists where
    they were written instead (empty when nowhere)."""

    def __init__(self, message: str, kept: Sequence[Path]) -> None:
        super().__init__(message)
        self.kept = list(kept)


class UnsavedImage(NamedTuple):
    stem: str
    data: bytes
    format: str
    parameters: str
    provenance: Mapping[str, Any]


def keep_unsaved(folder: Path, error: OSError, images: Sequence[UnsavedImage],
                 already_saved: Sequence[Path], unsaved_dir: Path | None) -> OutputFolderUnusable:
    """Write ``images`` to ``unsaved_dir`` (with their metadata) and return the error
    the job fails with. ``already_saved`` (written to ``folder`` before it failed)
    are removed once the copies are safe, so the output folder keeps no file the
    gallery does not index."""
    kept: list[Path] = []
    problem = "no folder to keep them in"
    if unsaved_dir is not None:
        try:
            kept = [write_image_atomic(unsaved_dir, i.stem, i.data, i.format,
                                       parameters=i.parameters, provenance=i.provenance)
                    for i in images]
        except (OSError, StoreError) as rescue_error:
            problem = getattr(rescue_error, "strerror", None) or str(rescue_error)
    if kept and len(kept) == len(images):
        for path in already_saved:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                kept.append(path)  # still there, and still one of the job's images
        where = (f" The {len(images)} image(s) already made (and paid for, on a cloud "
                 f"provider) were kept in {unsaved_dir}.")
    else:
        kept = list(already_saved)
        where = (f" They could not be kept elsewhere either ({problem}); retrying makes them "
                 "again (a cloud provider charges again).")
        if already_saved:
            where += f" Saved before the failure: {', '.join(map(str, already_saved))}."
    return OutputFolderUnusable(
        f"Could not save the images in {folder}: {_why(error)}. To fix it, {FIX}.{where}", kept)


def _why(error: OSError) -> str:
    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"its disk is full ({reason})"
    if error.errno == errno.EROFS:
        return f"it is on a read-only disk ({reason})"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"ImageDesk may not write there ({reason})"
    if error.errno == errno.ENOENT:
        return f"it does not exist, or its drive is not connected ({reason})"
    return reason
