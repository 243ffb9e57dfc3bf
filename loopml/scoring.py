"""Batch scoring: a registry version predicts a batch of raw rows, one chunk at a time.

The batch is streamed (:func:`loopml.sources.iter_batch`): each chunk is checked, predicted and
appended to the run's Parquet file, so memory holds one chunk whatever the batch's size. The
file appears only when every row is scored (a failed run leaves no partial file), and only then
do the rows go to the prediction log, where monitoring sees batch traffic as it sees served
traffic: until then the log's parts wait, encoded, in a file beside the output.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.exceptions import InputError, SourceError
from loopml.io import atomic_path
from loopml.predlog import LogTarget, PredictionBatch, PredictionLog, utc_now
from loopml.registry import LoadedVersion
from loopml.scoring_input import InputProblems, check_chunk

log = logging.getLogger(__name__)

LOG_PART_ROWS = 10_000
"""Scored rows per logged part: a part is one database row of a few megabytes."""


@dataclass(frozen=True)
class ScoredBatch:
    path: str
    rows: int
    model_name: str
    model_version: str
    alias: str
    summary: dict[str, float]
    logged_rows: int


@dataclass(frozen=True)
class ScoringOutput:
    """Where a scoring run's predictions go."""

    out_dir: Path
    """The folder of the run's Parquet file (``paths.scores``)."""
    run_id: str
    log_to: LogTarget | None
    """The prediction log; None: not logged."""

    def path(self, model_version: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return self.out_dir / f"scores-{stamp}-v{model_version}-{self.run_id[:8]}.parquet"


@dataclass
class ScoreTally:
    """The summary of the scores seen so far: rows, mean probability, mean prediction
    (regression) or the share of each class."""

    rows: int = 0
    probabilities: list[float] = field(default_factory=lambda: [0.0, 0.0])  # sum, count
    predictions: list[float] = field(default_factory=lambda: [0.0, 0.0])
    classes: Counter[str] = field(default_factory=Counter)

    def add(self, scores: pd.DataFrame) -> None:
        self.rows += len(scores)
        if "probability" in scores:
            self.probabilities[0] += float(scores["probability"].sum())
            self.probabilities[1] += int(scores["probability"].count())
        prediction = scores["prediction"]
        if pd.api.types.is_numeric_dtype(prediction) and not pd.api.types.is_bool_dtype(prediction):
            self.predictions[0] += float(prediction.sum())
            self.predictions[1] += int(prediction.count())
        else:
            self.classes.update(prediction.astype(str).value_counts().to_dict())

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {"rows": float(self.rows)}
        if self.probabilities[1]:
            out["mean_probability"] = self.probabilities[0] / self.probabilities[1]
        if self.predictions[1]:
            out["mean_prediction"] = self.predictions[0] / self.predictions[1]
        total = sum(self.classes.values())
        out.update({f"share_{k}": v / total for k, v in self.classes.most_common()})
        return out


class _StagedLog:
    """The prediction log's parts of a run, encoded into a file beside the output until every
    row is scored; then appended to the log, ``chunk_rows`` rows in memory at a time."""

    def __init__(self, folder: Path, request_id: str, version: str) -> None:
        self.request_id, self.version, self.ts = request_id, version, utc_now()
        fd, name = tempfile.mkstemp(prefix=".scoring-log-", suffix=".jsonl", dir=folder)
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")

    def add(self, inputs: pd.DataFrame, scores: pd.DataFrame, first_row: int) -> None:
        for start in range(0, len(inputs), LOG_PART_ROWS):
            part = inputs.iloc[start : start + LOG_PART_ROWS].reset_index(drop=True)
            columns = orjson.loads(part.to_json(orient="columns", date_format="iso"))
            scored = scores.iloc[start : start + LOG_PART_ROWS]
            prob = scored["probability"].tolist() if "probability" in scored else None
            batch = PredictionBatch(
                self.request_id,
                first_row + start,
                self.ts,
                self.version,
                {c: list(values.values()) for c, values in columns.items()},
                scored["prediction"].tolist(),
                prob,
            )
            self.file.write(orjson.dumps(batch.encoded()) + b"\n")

    def commit(self, target: LogTarget, chunk_rows: int) -> int:
        """Append every staged part to the log at ``target``; the rows logged."""
        self.file.close()
        plog, rows, pending, pending_rows = PredictionLog(target), 0, [], 0
        try:
            with self.path.open("rb") as staged:
                for line in staged:
                    part = tuple(orjson.loads(line))
                    pending.append(part)
                    pending_rows += part[2]
                    if pending_rows >= chunk_rows:
                        plog.append_encoded(pending)
                        plog.flush()  # one chunk in memory at a time
                        rows, pending, pending_rows = rows + pending_rows, [], 0
            if pending:
                plog.append_encoded(pending)
                rows += pending_rows
        finally:
            plog.close()  # waits until the rows are written
        return rows

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


@contextmanager
def _staged_log(output: ScoringOutput, version: str) -> Iterator[_StagedLog | None]:
    if output.log_to is None:
        yield None
        return
    output.out_dir.mkdir(parents=True, exist_ok=True)
    staged = _StagedLog(output.out_dir, f"batch-{output.run_id}", version)
    try:
        yield staged
    finally:
        staged.discard()


class _ScoresFile:
    """The run's Parquet file, a chunk at a time; every chunk in the first chunk's types."""

    def __init__(self, path: Path, source: str) -> None:
        self.path, self.source = path, source
        self.writer: pq.ParquetWriter | None = None

    def write(self, scores: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(scores, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        elif not table.schema.equals(self.writer.schema, check_metadata=False):
            table = self._cast(table, self.writer.schema)
        self.writer.write_table(table)

    def _cast(self, table: pa.Table, schema: pa.Schema) -> pa.Table:
        if table.schema.names != schema.names:  # e.g. a file of a folder without the id column
            raise InputError(
                f"cannot score {self.source}: the output columns {table.schema.names} of a "
                f"later chunk differ from the first chunk's {schema.names}; give every file "
                "the same columns"
            )
        changed = [f.name for f, g in zip(table.schema, schema, strict=True) if f.type != g.type]
        try:
            return table.cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise InputError(
                f"cannot score {self.source}: column(s) {changed} change type from one chunk of "
                f"rows to the next ({exc}); give them one type in the source, or raise "
                "score.chunk_rows"
            ) from None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _score_chunks(
    chunks: Iterable[pd.DataFrame],
    scorer: LoadedVersion,
    id_column: str | None,
    out: _ScoresFile,
    staged: _StagedLog | None,
    problems: InputProblems,
    tally: ScoreTally,
) -> None:
    """Check every chunk; predict, write and stage those of a batch without problems so far."""
    done, said = 0, time.monotonic()
    for chunk in chunks:
        rows = check_chunk(chunk, scorer, problems)
        if rows is not None and not problems:
            scores = scorer.model.predict(None, rows)
            if id_column and id_column in chunk.columns:
                scores.insert(0, id_column, chunk[id_column].to_numpy())
            scores["model_version"] = scorer.version
            out.write(scores)
            tally.add(scores)
            if staged is not None:
                present = [c for c in scorer.model.input_kinds if c in chunk.columns]
                staged.add(chunk[present], scores, done)
        done += len(chunk)
        if time.monotonic() - said > PROGRESS_EVERY_S:
            log.info("scoring: %s rows so far", f"{done:,}")
            said = time.monotonic()


PROGRESS_EVERY_S = 5.0
"""Seconds between progress lines of a long scoring run."""


def score_batch(
    chunks: Iterable[pd.DataFrame],
    scorer: LoadedVersion,
    alias: str,
    id_column: str | None,
    source: str,
    output: ScoringOutput,
    chunk_rows: int,
) -> ScoredBatch:
    """Predict every row of ``chunks`` (the batch of ``source``) with ``scorer``; write one
    Parquet file (the id column, the predictions, the model version), then log the rows.

    Raises :class:`InputError` naming ``source`` and every problem of the whole batch (missing
    columns, values that do not fit): then no file is written and nothing is logged.
    """
    path = output.path(scorer.version)
    problems, tally, logged = InputProblems(), ScoreTally(), 0
    with _staged_log(output, scorer.version) as staged:
        with atomic_path(path) as tmp:
            out = _ScoresFile(tmp, source)
            try:
                _score_chunks(chunks, scorer, id_column, out, staged, problems, tally)
            finally:
                out.close()
            if problems:
                raise InputError(problems.message(source))
            if out.writer is None:
                raise SourceError(f"{source}: the batch is empty (0 rows)")
        if staged is not None and output.log_to is not None:
            try:
                logged = staged.commit(output.log_to, chunk_rows)
            except BaseException:  # the log unreachable: no output of a run that failed
                path.unlink(missing_ok=True)
                raise
    log.info("scored %s rows with %s v%s", f"{tally.rows:,}", scorer.name, scorer.version)
    return ScoredBatch(
        path=str(path),
        rows=tally.rows,
        model_name=scorer.name,
        model_version=scorer.version,
        alias=alias,
        summary=tally.summary(),
        logged_rows=logged,
    )


def scores_markdown(batch: ScoredBatch, data_version: str | None, ui_url: str) -> str:
    """The Prefect artifact of a scoring run: rows, model version (linked), output."""
    link = f"{ui_url.rstrip('/')}/#/models/{batch.model_name}/versions/{batch.model_version}"
    return "\n".join(
        [
            f"# Batch scoring: {batch.rows:,} rows",
            "",
            f"Model: [{batch.model_name} v{batch.model_version}]({link}) "
            f"(alias `{batch.alias}`, data version `{data_version}`)",
            "",
            f"Output: `{batch.path}`; rows appended to the prediction log: {batch.logged_rows:,}",
            "",
            "| statistic | value |",
            "|---|---:|",
            *[f"| {k} | {v:,.4f} |" for k, v in batch.summary.items()],
        ]
    )
