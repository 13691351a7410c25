"""Build the example store shipped in examples/: the real agent graph run on SqliteSaver.

    python scripts/make_example.py [examples/agent.db]

Three threads: two resumed to the end, the last one waiting at its interrupt.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402

from examples.graphs import populate, serializer  # noqa: E402


def main(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    with SqliteSaver.from_conn_string(path) as saver:
        saver.serde = serializer()
        threads = populate(saver)
    # Fold the WAL into the main file so the example is one self-contained file.
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    print(f"wrote {path}: threads {', '.join(threads)} ({threads[-1]} is waiting at an interrupt)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/agent.db")
