"""The backup package's error: a failed backup, restore or archive operation."""
from __future__ import annotations

from edge.errors import FaceproError


class BackupError(FaceproError):
    """A backup operation failed; the message says which target/archive and why. Raised with
    ``exit_code=2`` where the caller named something that does not exist or cannot be."""


class BackupBusy(BackupError):
    """Another backup, restore or prune holds the data dir's lock: try again when it ends."""


class NewestOwnKept(BackupError):
    """A delete by hand of the newest archive the device made itself on a target, not forced."""
