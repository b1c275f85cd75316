"""Errors of the replay data layer."""

from __future__ import annotations

from pathlib import Path


class ReplayDataError(Exception):
    """Recorded market data (or the venue config naming it) cannot be replayed as given.

    The message names the file, the place in it (``line N`` for CSV, counting the header as line 1;
    ``row N`` for parquet, 1-based data rows) and the offending field, so an operator can open the
    file at that spot.

    Parameters
    ----------
    message : str
        What is wrong, including the bad value.
    path : Path | str | None
        The file concerned (absolute where known).
    location : str | None
        ``"line 17"``, ``"row 3"``, ``"event 2"`` …
    field : str | None
        Column or config key at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        location: str | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.location = location
        self.field = field
        self.reason = message
        parts = [str(self.path)] if self.path is not None else []
        if location:
            parts.append(location)
        if field:
            parts.append(f"field {field!r}")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ReplayFileNotFound(ReplayDataError):
    """A replay source names a file that is not there (``path``: where it looked, absolute).

    :func:`venues.replay.sources.parse_sources` raises one for every missing file of a listing at
    once (then ``path`` is None and the message names each), so an operator fixes them in one go.
    """
