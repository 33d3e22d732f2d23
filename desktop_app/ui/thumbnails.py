"""Thumbnails decoded off the GUI thread, kept as pixmaps in an LRU.

A ``QRunnable`` decodes and scales the file to a ``QImage`` on the thread pool
(never a ``QPixmap`` off the GUI thread); the GUI thread converts it with
``QPixmap.fromImage`` and emits ``ready(key)`` so the model repaints that item.
The most recently requested thumbnails are decoded first, so a fast scroll
fills the items in view before the ones scrolled past.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import weakref
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter, QPixmap


class _Relay(QObject):
    """Carries decoded images from the pool threads to the GUI thread.

    One relay lives as long as the process. A decode may still be running when the
    pane (and its cache) that asked for it is closed; when each cache had its own
    relay, a child of the cache, the relay could be deleted on the GUI thread while
    a pool thread was inside ``emit`` on it: a use-after-free that ended the whole
    process at random (pytest exited with no summary). Emitting on an object that is
    never deleted cannot race; a result for a cache that is gone is dropped.
    """

    loaded = Signal(int, object, QImage)  # cache number, image id (64-bit), image

    def __init__(self) -> None:
        super().__init__()
        self.caches: weakref.WeakValueDictionary[int, ThumbnailCache] = (
            weakref.WeakValueDictionary())
        self.loaded.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @Slot(int, object, QImage)
    def _deliver(self, cache_number: int, key: int, image: QImage) -> None:
        cache = self.caches.get(cache_number)
        if cache is None:
            return
        with contextlib.suppress(RuntimeError):  # its Qt half was deleted by a parent
            cache._on_loaded(key, image)


_relay: _Relay | None = None
_cache_numbers = itertools.count()


def _shared_relay() -> _Relay:
    """The process's relay, made on first use (on the GUI thread, by a cache)."""
    global _relay
    if _relay is None:
        _relay = _Relay()
    return _relay


class _Decode(QRunnable):
    def __init__(self, cache_number: int, key: int, path: Path, size: int) -> None:
        super().__init__()
        self.cache_number, self.key, self.path, self.size = cache_number, key, path, size
        self.setAutoDelete(True)

    def run(self) -> None:
        image = decode_scaled(self.path, self.size)
        _shared_relay().loaded.emit(self.cache_number, self.key, image)


def decode_scaled(path: Path, size: int) -> QImage:
    """``path`` decoded and scaled to fit ``size``×``size`` (a null image if unreadable)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    original = reader.size()
    if original.isValid() and (original.width() > size or original.height() > size):
        reader.setScaledSize(original.scaled(QSize(size, size),
                                             Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if not image.isNull() and (image.width() > size or image.height() > size):
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return image


class ThumbnailCache(QObject):
    ready = Signal(object)  # the key (a 64-bit image id) whose pixmap is now cached

    def __init__(self, size: int = 160, capacity: int = 800,
                 pool: QThreadPool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self._pool = pool or QThreadPool.globalInstance()
        self._cache: collections.OrderedDict[int, QPixmap] = collections.OrderedDict()
        self._pending: set[int] = set()
        self._order = itertools.count()
        self._number = next(_cache_numbers)
        _shared_relay().caches[self._number] = self
        self.placeholder = _placeholder(size, QColor(128, 128, 128, 60))
        self.broken = _placeholder(size, QColor(200, 60, 60, 80))

    def pixmap(self, key: int, path: Path | None) -> QPixmap | None:
        """The cached pixmap, or None after asking for it to be decoded in the background."""
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        if path is not None and key not in self._pending:
            self._pending.add(key)
            # later requests get a higher priority: what is on screen now comes first
            self._pool.start(_Decode(self._number, key, path, self.size), next(self._order))
        return None

    def cached(self, key: int) -> bool:
        return key in self._cache

    def forget(self, key: int) -> None:
        self._cache.pop(key, None)

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _on_loaded(self, key: int, image: QImage) -> None:
        self._pending.discard(key)
        pixmap = self.broken if image.isNull() else QPixmap.fromImage(image)
        self._cache[key] = pixmap
        self._cache.move_to_end(key)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(key)


def _placeholder(size: int, colour: QColor) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawRoundedRect(4, 4, size - 8, size - 8, 8, 8)
    painter.end()
    return pixmap
