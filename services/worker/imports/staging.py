"""A temporary SQLite file that holds a file's comments while it is read, for formats whose
comments are not grouped by thread (Disqus lists every thread, then every post).

Yielding a thread whole needs all of its posts, which may be anywhere in the file; holding
a million posts in memory would not stay flat. So posts are written here as they stream by
(in large transactions, no journal: the file is thrown away), indexed once at the end, and
read back one thread at a time. It lives beside the system's temporary files unless told
otherwise, and is deleted when the source is closed (or the process ends).
"""

import os
import sqlite3
import tempfile
from pathlib import Path


class StagingFile:
    def __init__(self, directory: Path | None = None) -> None:
        handle, name = tempfile.mkstemp(prefix="chorus-import-", suffix=".sqlite", dir=directory)
        os.close(handle)
        self.path = Path(name)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        for pragma in (
            "journal_mode = OFF",
            "synchronous = OFF",
            "temp_store = FILE",
            "cache_size = -32768",  # 32 MiB of page cache: memory stays flat
        ):
            self.db.execute(f"PRAGMA {pragma}")

    def close(self) -> None:
        self.db.close()
        self.path.unlink(missing_ok=True)
