"""The rate each key was learnt to allow, kept in the journal, so the next kernel
starts at it instead of finding the limit again with 429s.

One row per server and key, named by ``key_id``: a digest of the key's
fingerprint, never the key. The table is the journal's, made on first use (an
older journal simply has none yet). What comes back from the file is checked
like anything from outside: a row that is not a usable rate is ignored.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sqlite3

from .budget import Learnt, check_rate
from .journal import Journal, JournalUnavailable

log = logging.getLogger("hiapi_notebook")

_TABLE = """
CREATE TABLE IF NOT EXISTS learnt_rates (
    server TEXT NOT NULL,
    key_id TEXT NOT NULL,
    rate REAL NOT NULL,
    w_max REAL,
    source TEXT NOT NULL,
    learnt_at REAL NOT NULL,
    PRIMARY KEY (server, key_id)
)
"""
MAX_SOURCE = 160


def key_id(fingerprint: str) -> str:
    """A short name of the key for the journal (a digest of a digest: nothing to undo)."""
    return hashlib.sha256(f"hiapi-notebook learnt rate:{fingerprint}".encode()).hexdigest()[:24]


def recall(journal: Journal, server: str, key: str) -> Learnt | None:
    """What the journal remembers of ``server`` and ``key`` (a ``key_id``), or None."""
    try:
        row = journal._query_one(
            "SELECT rate, w_max, source, learnt_at FROM learnt_rates WHERE server = ? AND key_id = ?",
            (server, key),
        )
    except (JournalUnavailable, sqlite3.ProgrammingError):  # no table yet (an older journal), or closed
        return None
    if row is None:
        return None
    try:
        rate = check_rate(row["rate"])
        w_max = None if row["w_max"] is None else check_rate(row["w_max"])
    except ValueError:
        return None
    at = row["learnt_at"]
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at) or at <= 0:
        return None
    said = row["source"] if isinstance(row["source"], str) else ""
    said = "".join(c for c in said[:MAX_SOURCE] if c.isprintable())
    return Learnt(rate, w_max, said or "an earlier kernel", float(at), remembered=True)


def remember(journal: Journal, server: str, key: str, learnt: Learnt) -> None:
    """Keep ``learnt`` for the next kernel; a journal that cannot be written is no reason to stop."""
    if journal.read_only:
        return
    try:
        with journal._write() as conn:
            conn.execute(_TABLE)
            conn.execute(
                "INSERT OR REPLACE INTO learnt_rates (server, key_id, rate, w_max, source, learnt_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (server, key, learnt.rate, learnt.w_max, learnt.source[:MAX_SOURCE], learnt.at),
            )
    except (JournalUnavailable, sqlite3.ProgrammingError) as exc:  # unwritable, or closed since
        log.debug("hiapi journal: the learnt rate is not kept (%s)", exc)
