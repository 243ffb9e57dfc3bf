"""The model server's state: the current model, swapped when its alias moves, and the
prediction log every prediction is appended to."""

from __future__ import annotations

import gc
import logging
import threading
from typing import TYPE_CHECKING

import orjson

from loopml.exceptions import IntegrityError, NoModelYet
from loopml.predlog import LogTarget, PredictionBatch, PredictionLog, new_request_id, utc_now
from loopml.registry import alias_version
from loopml.serving.inputs import Rows
from loopml.serving.model import ServedModel, load_served

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


class ModelServer:
    """Holds the current model, swaps it when the alias moves, logs every prediction."""

    def __init__(
        self, client: MlflowClient, name: str, alias: str, log_path: LogTarget, poll_seconds: float
    ) -> None:
        self.client = client
        self.name = name
        self.alias = alias
        self.poll_seconds = poll_seconds
        self.current: ServedModel | None = None
        """None until a version has the alias (a new stack: the server waits for training)."""
        if alias_version(client, name, alias) is not None:
            self.current = load_served(client, name, alias)
        else:
            log.warning("no version of %s has the alias %s yet: waiting for one", name, alias)
        self.refused: dict[str, str] | None = None
        """The version the alias names but that failed verification, and why (GET /health)."""
        self.log = PredictionLog(log_path)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="alias-watcher", daemon=True)

    def start(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        self.log.close()

    def refresh(self) -> bool:
        """Load the alias's version if it moved. Returns whether the model changed."""
        version = alias_version(self.client, self.name, self.alias)
        if version is None:
            return False  # nothing to serve yet (or the alias was removed: keep the model)
        served = self.current.version if self.current else None
        if version == served or (self.refused or {}).get("version") == version:
            return False
        try:
            new = load_served(self.client, self.name, self.alias)
        except IntegrityError as exc:  # keep serving the verified model
            self.refused = {"version": version, "reason": str(exc)}
            log.error("not serving %s v%s: %s", self.name, version, exc)
            return False
        self.refused = None
        self.current = new  # one reference swap: in-flight batches keep the model they hold
        gc.freeze()  # the new model's objects, as at start-up
        log.info("serving %s v%s (alias %s moved)", self.name, new.version, self.alias)
        return True

    def model(self) -> ServedModel:
        """The model to answer with; :class:`NoModelYet` until a version has the alias."""
        current = self.current
        if current is None:
            raise NoModelYet(
                f"no version of {self.name} has the alias '{self.alias}' yet; train one "
                "(loopml run, or the training deployment) and this server loads it"
            )
        return current

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as exc:  # the registry is briefly unreachable: keep serving
                log.warning("alias check failed: %s", exc)

    def predict_batch(self, batches: list[Rows]) -> list[bytes]:
        """Predict the requests of one micro-batch together; log each request; JSON responses."""
        model = self.model()
        names = list(model.model.input_kinds)
        batches = [b.aligned(names) for b in batches]
        output = model.output(Rows.concat(batches))
        labels, probs = model.model.label(output)
        preds = labels.tolist()
        prob = probs.get("probability")
        prob_list = prob.tolist() if prob is not None else None
        ts = utc_now()
        responses: list[bytes] = []
        logged: list[PredictionBatch] = []
        start = 0
        for batch in batches:
            request_id = new_request_id()
            stop = start + batch.count
            part_preds = preds[start:stop]
            part_probs = None if prob_list is None else prob_list[start:stop]
            shown = part_probs if part_probs is not None else [None] * batch.count
            part = [
                {"row": i, "prediction": p, "probability": q}
                for i, (p, q) in enumerate(zip(part_preds, shown, strict=True))
            ]
            logged.append(
                PredictionBatch(
                    request_id, 0, ts, model.version, batch.columns, part_preds, part_probs
                )
            )
            responses.append(
                orjson.dumps(
                    {"request_id": request_id, "model_version": model.version, "predictions": part},
                    option=_NUMPY,
                )
            )
            start = stop
        self.log.append(logged)
        return responses
