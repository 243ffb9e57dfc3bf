"""The MLflow model registry: versions, aliases, and the one way to load a model.

Every model is loaded through :func:`load_model` from an artifact location that the caller's own
client resolved (``models:/name/version`` would go through MLflow's process-wide registry URI,
and one process may hold several registries).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopml.aliases import CHAMPION, PREVIOUS
from loopml.exceptions import NoModelYet, PromotionRefused
from loopml.integrity import verified_location
from loopml.secrets import redact_url

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from loopml.pyfunc import LoopmlModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedVersion:
    """A registered model version, loaded: the model and what the registry says about it."""

    name: str
    version: str
    model: LoopmlModel
    required: frozenset[str]
    """Input columns the model's signature requires."""
    run_id: str
    tags: dict[str, str]

    @property
    def data_version(self) -> str | None:
        return self.tags.get("loopml.data_version")

    @property
    def metrics(self) -> dict[str, float]:
        return version_metrics(self.tags)


def version_metrics(tags: dict[str, str]) -> dict[str, float]:
    """The test metrics recorded on a model version (``metric.<name>`` tags)."""
    return {k[len("metric.") :]: float(v) for k, v in tags.items() if k.startswith("metric.")}


def load_model(location: str) -> tuple[LoopmlModel, frozenset[str]]:
    """The loopml model at an artifact location, and the input columns its signature requires."""
    import mlflow

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ii]nteger column.*")
        pyfunc = mlflow.pyfunc.load_model(location)
    schema = pyfunc.metadata.get_input_schema()
    required = (
        frozenset(c.name for c in schema.inputs if getattr(c, "required", True))
        if schema
        else frozenset()
    )
    return pyfunc.unwrap_python_model(), required


def _loaded(client: MlflowClient, mv: ModelVersion, verify: bool = False) -> LoadedVersion:
    """``verify``: load only artifacts whose digest and signature match
    (:func:`loopml.integrity.verified_location`); promotion itself loads unsigned versions."""
    if verify:
        with verified_location(client, mv.name, str(mv.version), dict(mv.tags)) as location:
            model, required = load_model(location)  # in memory: the checked copy can go
    else:
        model, required = load_model(client.get_model_version_download_uri(mv.name, mv.version))
    return LoadedVersion(
        name=mv.name,
        version=str(mv.version),
        model=model,
        required=required,
        run_id=mv.run_id,
        tags=dict(mv.tags),
    )


def load_version(client: MlflowClient, name: str, version: str) -> LoadedVersion:
    return _loaded(client, client.get_model_version(name, version))


def load_alias(client: MlflowClient, name: str, alias: str, verify: bool = False) -> LoadedVersion:
    """The version ``alias`` points to, loaded (verified first when ``verify``).

    Raises :class:`NoModelYet` when the model or the alias does not exist (yet)."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise NoModelYet(
            f"no version of {name} has the alias '{alias}' in {redact_url(client.tracking_uri)}"
            ": train and promote one first (`loopml run`), or choose another alias"
        ) from None
    return _loaded(client, version, verify)


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version an alias points to, or None (no such alias or model)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description="Managed by loopml promotion policy.")
        except MlflowException:  # created by a concurrent run meanwhile
            client.get_registered_model(name)


def rollback(client: MlflowClient, name: str) -> tuple[str, str]:
    """Move ``champion`` back to ``previous``. Returns (demoted version, restored version)."""
    champion = alias_version(client, name, CHAMPION)
    previous = alias_version(client, name, PREVIOUS)
    if champion is None or previous is None:
        raise PromotionRefused(
            [f"{name} has no '{CHAMPION}' and '{PREVIOUS}' aliases to roll back"]
        )
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.delete_registered_model_alias(name, PREVIOUS)
    client.set_model_version_tag(name, champion, "loopml.decision", "rolled_back")
    return champion, previous
