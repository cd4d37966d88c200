"""The checkpoint: which S3 objects and SQS messages were fully processed, kept in a small
JSON file so that a restart neither misses nor re-alerts.

Why it looks the way it does:

- Objects are recorded by ``bucket/key`` with the number of records already handed to the
  rules: ``complete`` once every record was evaluated, or a count when falconet stopped in the
  middle of a file (the next run skips that many records of it and goes on). Messages are
  recorded by SQS message id, so a redelivered notification (``sqsDelete: false``, or a
  delete that failed) is not processed twice.
- The file stays as large as what can still come back, not as everything ever read: after a
  complete S3 listing, entries of objects no longer listed are dropped (the bucket's lifecycle
  removed them, or ``s3Interval``/``since`` moved past them); SQS entries are dropped after
  :data:`SQS_RETENTION_S`, the longest time SQS keeps a message.
- Writes are atomic (a temporary file in the same directory, fsync, rename, fsync of the
  directory): a crash leaves the previous checkpoint or the new one, never half of one. They
  happen at most every :data:`SAVE_EVERY_S` (and at least ten times slower than one write
  takes, so a large file costs little), and always when the source stops. A ``kill -9``
  loses at most that much progress: those records are read again.
- A lock file (``<file>.lock``, ``flock``) keeps two falconet processes from sharing one
  checkpoint, which would make each skip what the other read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

__all__ = ["FORMAT", "SAVE_EVERY_S", "SQS_RETENTION_S", "Checkpoint", "CheckpointError",
           "default_path"]

FORMAT = "falconet-cloudtrail-checkpoint"
VERSION = 1
SAVE_EVERY_S = 1.0
#: SQS keeps a message at most 14 days; one day more for clocks and redeliveries
SQS_RETENTION_S = 15 * 86400

#: ``records`` of an object whose records were all evaluated
COMPLETE = -1


class CheckpointError(Exception):
    """The checkpoint cannot be read, written or locked; the message says which file and why."""


def default_path(open_params: str) -> Path:
    """``$XDG_STATE_HOME/falconet/cloudtrail/<open_params as a file name>-<hash>.json``
    (``~/.local/state`` when ``XDG_STATE_HOME`` is not set): one file per input."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", open_params).strip("_")[:80] or "input"
    digest = hashlib.sha256(open_params.encode()).hexdigest()[:8]
    return Path(base) / "falconet" / "cloudtrail" / f"{slug}-{digest}.json"


class Checkpoint:
    """Progress of one input. ``path`` None keeps it in memory only (``checkpoint: false``):
    polling still reads each object once, a restart starts over."""

    def __init__(self, path: Path | None, source: str) -> None:
        self.path = path
        self.source = source
        #: ``bucket/key`` -> [unix time of the last change, records done or COMPLETE]
        self.objects: dict[str, list[int]] = {}
        #: SQS message id -> unix time it was processed
        self.messages: dict[str, int] = {}
        self._dirty = False
        self._saved_at = 0.0
        self._save_every = SAVE_EVERY_S
        self._lock_fd: int | None = None

    # --- reading and writing the file ---------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None, source: str) -> Checkpoint:
        """The checkpoint at ``path`` (a fresh one when the file does not exist yet), locked
        for this process and written once, so an unwritable place fails at start-up."""
        checkpoint = cls(path, source)
        if path is None:
            return checkpoint
        checkpoint._lock()
        if path.exists():
            checkpoint._read()
        checkpoint.save()
        return checkpoint

    def _lock(self) -> None:
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(f"checkpoint {self.path}: cannot create its directory "
                                  f"{self.path.parent}: {exc.strerror or exc}") from None
        try:
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CheckpointError(f"checkpoint {self.path}: cannot create {self.path}.lock: "
                                  f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise CheckpointError(f"checkpoint {self.path} is in use by another falconet "
                                  "process (give each one its own checkpointFile)") from None
        self._lock_fd = fd

    def _read(self) -> None:
        assert self.path is not None
        try:
            doc = orjson.loads(self.path.read_bytes())
        except OSError as exc:
            raise CheckpointError(f"checkpoint {self.path}: cannot read it: "
                                  f"{exc.strerror or exc}") from None
        except orjson.JSONDecodeError as exc:
            raise CheckpointError(f"checkpoint {self.path} is not JSON ({exc}): move it away "
                                  "to start over (everything will be read again)") from None
        if not (isinstance(doc, dict) and doc.get("format") == FORMAT):
            raise CheckpointError(f"checkpoint {self.path} is not a falconet cloudtrail "
                                  f"checkpoint (no \"format\": \"{FORMAT}\")")
        if doc.get("version") != VERSION:
            raise CheckpointError(f"checkpoint {self.path} has version {doc.get('version')!r}; "
                                  f"this falconet reads version {VERSION}")
        objects, messages = doc.get("objects", {}), doc.get("messages", {})
        if not (isinstance(objects, dict) and isinstance(messages, dict)
                and all(isinstance(v, list) and len(v) == 2 for v in objects.values())):
            raise CheckpointError(f"checkpoint {self.path} is damaged (objects or messages "
                                  "are not as written): move it away to start over")
        self.objects = {str(k): [int(v[0]), int(v[1])] for k, v in objects.items()}
        self.messages = {str(k): int(v) for k, v in messages.items()}

    def save(self) -> None:
        """Write the file now (atomically). Raises :class:`CheckpointError`."""
        if self.path is None:
            return
        started = time.monotonic()
        doc = {"format": FORMAT, "version": VERSION, "source": self.source,
               "updated": int(time.time()), "objects": self.objects,
               "messages": self.messages}
        data = orjson.dumps(doc, option=orjson.OPT_INDENT_2 if len(self.objects) < 1000 else 0)
        directory = self.path.parent
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise CheckpointError(f"checkpoint {self.path}: cannot write it: "
                                  f"{exc.strerror or exc}") from None
        self._dirty = False
        self._saved_at = time.monotonic()
        self._save_every = max(SAVE_EVERY_S, 10 * (self._saved_at - started))

    def save_if_due(self) -> None:
        """Write the file when something changed and the last write is old enough."""
        if self._dirty and time.monotonic() - self._saved_at >= self._save_every:
            self.save()

    def flush(self) -> None:
        """Write the file if anything changed since the last write (before a long wait)."""
        if self._dirty:
            self.save()

    def close(self) -> None:
        """Final write and unlock (the source stopped)."""
        try:
            if self._dirty:
                self.save()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # --- objects ------------------------------------------------------------------------------

    def records_done(self, name: str) -> int:
        """Records of ``name`` already evaluated (:data:`COMPLETE`: all of them; 0: none)."""
        entry = self.objects.get(name)
        return entry[1] if entry is not None else 0

    def is_complete(self, name: str) -> bool:
        entry = self.objects.get(name)
        return entry is not None and entry[1] == COMPLETE

    def progress(self, name: str, records: int) -> None:
        """``records`` records of ``name`` were evaluated (it is not finished yet)."""
        self.objects[name] = [int(time.time()), records]
        self._dirty = True

    def complete(self, name: str) -> None:
        """Every record of ``name`` was evaluated."""
        self.objects[name] = [int(time.time()), COMPLETE]
        self._dirty = True

    def retain_objects(self, keep: Callable[[str], bool]) -> int:
        """Drop the entries ``keep`` refuses (objects that will not be listed again); returns
        how many were dropped."""
        gone = [name for name in self.objects if not keep(name)]
        for name in gone:
            del self.objects[name]
        if gone:
            self._dirty = True
        return len(gone)

    # --- SQS messages -------------------------------------------------------------------------

    def message_done(self, message_id: str) -> bool:
        return message_id in self.messages

    def mark_message(self, message_id: str) -> None:
        self.messages[message_id] = int(time.time())
        self._dirty = True

    def expire(self, max_age_s: int = SQS_RETENTION_S, now: float | None = None,
               objects: bool = True) -> None:
        """Drop messages (and, with ``objects``, objects) recorded more than ``max_age_s``
        ago: SQS will not deliver their notifications again."""
        limit = int(now if now is not None else time.time()) - max_age_s
        old = [m for m, at in self.messages.items() if at < limit]
        for message_id in old:
            del self.messages[message_id]
        dropped = len(old)
        if objects:
            dropped += self.retain_objects(lambda name: self.objects[name][0] >= limit)
        if dropped:
            self._dirty = True

    def summary(self) -> dict[str, Any]:
        """What a log line says about the checkpoint at start-up."""
        complete = sum(1 for _, records in self.objects.values() if records == COMPLETE)
        return {"checkpoint": str(self.path) if self.path else "memory",
                "objects_done": complete, "objects_partial": len(self.objects) - complete,
                "messages_done": len(self.messages)}
