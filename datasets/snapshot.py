"""Copy each dataset's live job store into a committed snapshot (SQLite online backup), so a
later session resumes where this one stopped: regenerate.sh restores it when store/ is absent.

    python datasets/snapshot.py
"""

import sqlite3
from pathlib import Path

HERE = Path(__file__).resolve().parent
for live in sorted(HERE.glob("*/store/jobs.sqlite")):
    snap = live.parent.parent / "jobs.snapshot.sqlite"
    tmp = snap.with_suffix(".tmp")
    src = sqlite3.connect(f"file:{live}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    src.backup(dst)
    n = dst.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
    dst.execute("PRAGMA journal_mode=DELETE")
    dst.close()
    src.close()
    tmp.replace(snap)
    print(f"{snap.relative_to(HERE)}: {dict(n)}")
