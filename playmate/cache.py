"""One cache for loaded models, shared by the CLI, the pipeline and every node.

A model is identified by what it was loaded from and how: its kind, the files
(path, size and modification time, so a replaced file is reloaded), the dtype
and the device.  Asking twice for the same key returns the same object; the
loader runs once.  ``loads`` counts the loader calls per key (tests use it to
prove that a file is read once).
"""

import os
import threading
from collections import Counter
from pathlib import Path


def file_key(*paths):
    """A hashable identity of files on disk: (resolved path, size, mtime) each."""
    out = []
    for path in paths:
        path = Path(path)
        try:
            st = os.stat(path)
            out.append((str(path.resolve()), st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append((str(path), None, None))
    return tuple(out)


class ModelCache:
    def __init__(self, max_items=8):
        self.max_items = max_items
        self._items = {}
        self._lock = threading.RLock()
        self.loads = Counter()

    def get(self, key, loader):
        """Return the cached object for ``key``, calling ``loader()`` on a miss."""
        with self._lock:
            if key in self._items:
                value = self._items.pop(key)
                self._items[key] = value  # most recently used last
                return value
            value = loader()
            self.loads[key] += 1
            self._items[key] = value
            while len(self._items) > self.max_items:
                self._items.pop(next(iter(self._items)))
            return value

    def __len__(self):
        return len(self._items)

    def keys(self):
        with self._lock:
            return list(self._items)

    def clear(self):
        with self._lock:
            self._items.clear()


MODELS = ModelCache()
