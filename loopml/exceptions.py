"""The one exceptions module of loopml.

Hierarchy::

    LoopmlError
    ├── ConfigError            params.yaml or an override is wrong
    ├── SourceError            a data source cannot be read (missing, unreachable, empty)
    ├── DataValidationError    a snapshot failed a blocking expectation
    ├── InputError             rows to predict do not fit the model (serving, batch scoring)
    ├── VersioningError        DVC could not version or fetch a snapshot
    ├── TrainingError          a candidate failed to train
    ├── StorageError           the disk is full or not writable (nothing partial is left)
    ├── IntegrityError         a snapshot does not match its version and cannot be restored
    └── PromotionRefused       a candidate did not pass the promotion policy
"""

from __future__ import annotations

from collections.abc import Sequence


class LoopmlError(Exception):
    """Base class of every error loopml raises on purpose."""


class ConfigError(LoopmlError):
    """Configuration is invalid. The message names the key path and the problem."""

    def __init__(self, problems: Sequence[str], source: str = "params.yaml") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


class SourceError(LoopmlError):
    """A data source is missing, unreachable, unreadable or empty.

    ``transient`` marks failures that may pass on a retry (a timeout, a refused connection).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        self.transient = transient
        super().__init__(message)


class DataValidationError(LoopmlError):
    """A snapshot failed one or more blocking expectations."""

    def __init__(self, snapshot: str, failures: Sequence[str], quarantined_to: str | None = None):
        self.snapshot = snapshot
        self.failures = list(failures)
        self.quarantined_to = quarantined_to
        where = f"; quarantined to {quarantined_to}" if quarantined_to else ""
        lines = "\n".join(f"  - {f}" for f in self.failures)
        super().__init__(
            f"snapshot {snapshot} failed {len(self.failures)} blocking "
            f"expectation(s){where}:\n{lines}"
        )


class InputError(LoopmlError, ValueError):
    """Rows to predict do not fit the model's input. The message names the column (and the
    record or source) and the problem; the server answers it with a 422."""


class VersioningError(LoopmlError):
    """DVC failed to add, push or fetch data."""


class StorageError(LoopmlError):
    """Writing failed for lack of space or permission; what was being written is not kept."""


class NoModelYet(LoopmlError):
    """The server waits for its alias: no registered version has it yet (answered with 503)."""


class IntegrityError(LoopmlError):
    """A file does not match the hash it is known by (and no good copy could be restored)."""


class TrainingError(LoopmlError):
    """A candidate could not be trained."""


class PromotionRefused(LoopmlError):
    """A model version did not pass the promotion policy."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("promotion refused:\n" + "\n".join(f"  - {r}" for r in self.reasons))
