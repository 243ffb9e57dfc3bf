"""Which failures may pass on a second try (I/O) and which cannot (bad data, bad config)."""

from __future__ import annotations

from loopml.exceptions import LoopmlError, SourceError, VersioningError


def is_transient(exc: BaseException) -> bool:
    """A network, disk or lock failure: worth a retry. Bad data or configuration: never."""
    if isinstance(exc, SourceError):
        return exc.transient
    if isinstance(exc, LoopmlError):
        return isinstance(exc, VersioningError)  # a DVC remote or lock that was busy
    return not isinstance(exc, ValueError | TypeError | KeyError | AttributeError)
