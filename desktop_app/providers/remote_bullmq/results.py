"""Moving finished images from a worker to the desktop, outside BullMQ's own keys.

A job's return value is copied by BullMQ into the job hash *and* into the
queue's event stream (kept to ~10,000 entries), so images inlined there
(base64, +33 %) would sit in Redis memory long after the desktop took them.
Instead the worker writes the raw bytes to one hash per job attempt
(``imagedesk:<queue>:result:<job>:<token>``) with a TTL, or to files in a
shared folder, and returns a small manifest; the desktop reads, verifies
(size, SHA-256) and deletes them. An attempt that loses its lock never gets
its manifest accepted, so its leftovers simply expire. Measured in
bench/bench_remote.py.

Input images (sources, masks) travel the other way by the same transports:
the desktop puts them in ``imagedesk:<queue>:inputs:<job>`` (with a TTL) or in
the shared folder before it queues the job, the worker fetches and verifies
them (size, SHA-256) before it runs the job, and the desktop removes them when
the job has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from desktop_app.domain.errors import Transient
from desktop_app.domain.images import GeneratedImage
from desktop_app.providers.remote_bullmq.errors import PROVIDER
from desktop_app.providers.remote_bullmq.protocol import (
    InputEntry,
    InputManifest,
    Keys,
    ResultImage,
    ResultManifest,
    Transport,
)


class ResultTooLarge(Exception):
    pass


async def store(images: Sequence[GeneratedImage], *, keys: Keys, job_id: str, token: str,
                transport: Transport, blobs: Any, folder: Path | None, ttl_s: int,
                max_bytes: int) -> tuple[Transport, str, tuple[ResultImage, ...]]:
    """Worker side: put the images where the desktop will look; returns the manifest parts.

    ``blobs`` is a redis.asyncio client without response decoding. The folder
    transport is used only when asked for and this worker has a results folder.
    """
    safe_token = token.replace(":", "-")
    entries = tuple(
        ResultImage(index=i, seed=img.seed, width=img.width, height=img.height,
                    format=img.format, size=len(img.data),
                    sha256=hashlib.sha256(img.data).hexdigest(),
                    ref=f"{job_id}-{safe_token}-{i}.{img.format}" if transport is Transport.FOLDER
                    and folder is not None else str(i))
        for i, img in enumerate(images))
    if transport is Transport.FOLDER and folder is not None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _write_files, folder, entries, images)
        return Transport.FOLDER, "", entries
    total = sum(e.size for e in entries)
    if total > max_bytes:
        raise ResultTooLarge(
            f"The images of this job are {total / 2**20:.1f} MiB, more than the "
            f"{max_bytes / 2**20:.0f} MiB this worker sends through Redis: give the "
            "worker a shared results folder (--results-folder) and the desktop the same "
            "folder, or ask for fewer or smaller images.")
    key = keys.result(job_id, safe_token)
    async with blobs.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={e.ref: img.data for e, img in zip(entries, images, strict=True)})
        pipe.expire(key, ttl_s)
        await pipe.execute()
    return Transport.REDIS, key, entries


def _write_files(folder: Path, entries: Sequence[ResultImage],
                 images: Sequence[GeneratedImage]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for entry, image in zip(entries, images, strict=True):
        target = folder / entry.ref
        temp = target.with_suffix(target.suffix + ".part")
        with open(temp, "wb") as fh:
            fh.write(image.data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)


async def fetch(manifest: ResultManifest, *, blobs: Any,
                folder: Path | None) -> list[bytes]:
    """Desktop side: the images' bytes in manifest order, verified; the copies are removed."""
    if manifest.transport is Transport.FOLDER:
        if folder is None:
            raise Transient("A remote worker wrote this job's images to its shared folder, "
                            "but no shared folder is set here: set the same folder in "
                            "Settings → Remote.", provider=PROVIDER)
        loop = asyncio.get_running_loop()
        datas = await loop.run_in_executor(None, _read_files, folder, manifest.images)
    else:
        stored: dict[bytes, bytes] = await blobs.hgetall(manifest.location)
        await blobs.delete(manifest.location)
        datas = [stored.get(entry.ref.encode()) for entry in manifest.images]
    out = []
    for entry, data in zip(manifest.images, datas, strict=True):
        if data is None:
            raise Transient(f"Image {entry.index + 1} of the remote job is missing from "
                            f"{manifest.transport.value} (expired before it was read?).",
                            provider=PROVIDER)
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise Transient(f"Image {entry.index + 1} of the remote job arrived damaged "
                            f"({len(data)} of {entry.size} bytes, checksum mismatch).",
                            provider=PROVIDER)
        out.append(data)
    return out


def _read_files(folder: Path, entries: Sequence[ResultImage]) -> list[bytes | None]:
    datas: list[bytes | None] = []
    for entry in entries:
        path = folder / Path(entry.ref).name  # a name, never a path from the wire
        try:
            datas.append(path.read_bytes())
        except FileNotFoundError:
            datas.append(None)
            continue
        with contextlib.suppress(OSError):
            path.unlink()
    return datas


# -- input images, desktop -> worker ---------------------------------------------

class InputsTooLarge(Exception):
    pass


async def upload_inputs(datas: Sequence[tuple[str, bytes]], *, keys: Keys, job_id: str,
                        transport: Transport, blobs: Any, folder: Path | None, ttl_s: int,
                        max_bytes: int) -> InputManifest:
    """Desktop side: put a job's input images (``(sha256, bytes)``) where its worker
    will look, before the job is queued."""
    if transport is Transport.FOLDER and folder is not None:
        entries = tuple(InputEntry(sha, len(data), f"{job_id}-input-{sha}.png")
                        for sha, data in datas)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _write_inputs, folder, entries, datas)
        return InputManifest(Transport.FOLDER, "", entries)
    total = sum(len(data) for _, data in datas)
    if total > max_bytes:
        raise InputsTooLarge(
            f"The input images of this job are {total / 2**20:.1f} MiB, more than the "
            f"{max_bytes / 2**20:.0f} MiB sent through Redis: use the shared-folder transport "
            "(Settings → Remote) or a smaller source image.")
    key = keys.inputs(job_id)
    entries = tuple(InputEntry(sha, len(data), sha) for sha, data in datas)
    async with blobs.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={sha: data for sha, data in datas})
        pipe.expire(key, ttl_s)
        await pipe.execute()
    return InputManifest(Transport.REDIS, key, entries)


def _write_inputs(folder: Path, entries: Sequence[InputEntry],
                  datas: Sequence[tuple[str, bytes]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for entry, (_, data) in zip(entries, datas, strict=True):
        target = folder / entry.ref
        temp = target.with_suffix(".part")
        with open(temp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)


async def fetch_inputs(manifest: InputManifest, *, blobs: Any,
                       folder: Path | None) -> dict[str, bytes]:
    """Worker side: each input image's bytes by SHA-256, verified; the desktop's
    copies stay until the job ends (a retry on another worker needs them)."""
    if manifest.transport is Transport.FOLDER:
        if folder is None:
            raise Transient("The desktop put this job's input images in its shared folder, "
                            "but this worker has none: start it with --results-folder "
                            "(the same folder).", provider=PROVIDER)
        loop = asyncio.get_running_loop()
        datas = await loop.run_in_executor(None, _read_inputs, folder, manifest.images)
    else:
        fields = [entry.ref for entry in manifest.images]
        datas = list(await blobs.hmget(manifest.location, fields)) if fields else []
    out: dict[str, bytes] = {}
    for entry, data in zip(manifest.images, datas, strict=True):
        if data is None:
            raise Transient(f"The input image {entry.sha256[:12]}… of this job is missing "
                            f"from {manifest.transport.value} (expired before a worker took "
                            "the job?).", provider=PROVIDER)
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise Transient(f"The input image {entry.sha256[:12]}… arrived damaged "
                            f"({len(data)} of {entry.size} bytes, checksum mismatch).",
                            provider=PROVIDER)
        out[entry.sha256] = data
    return out


def _read_inputs(folder: Path, entries: Sequence[InputEntry]) -> list[bytes | None]:
    datas: list[bytes | None] = []
    for entry in entries:
        path = folder / Path(entry.ref).name  # a name, never a path from the wire
        try:
            with open(path, "rb") as fh:
                datas.append(fh.read(entry.size + 1))  # one byte more shows a longer file
        except FileNotFoundError:
            datas.append(None)
    return datas


async def remove_inputs(manifest: InputManifest, *, blobs: Any, folder: Path | None) -> None:
    """Desktop side, once the job has ended: the copies of its input images go."""
    if manifest.transport is Transport.FOLDER:
        if folder is not None:
            for entry in manifest.images:
                with contextlib.suppress(OSError):
                    (folder / Path(entry.ref).name).unlink()
        return
    await blobs.delete(manifest.location)
