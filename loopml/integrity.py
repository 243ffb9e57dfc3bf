"""Model artifacts verified before they are unpickled.

At promotion, the digest of a version's artifacts (sha256 over every file's relative path and
bytes) is recorded on the model version and signed with an HMAC key from ``LOOPML_SIGNING_KEY``.
The model server and batch scoring download a version's artifacts to a local folder, check the
digest and the signature there, and only then load the model from that folder: a version whose
artifacts were changed after promotion, or that was signed with another key, is refused.
Without a key, models load as before, with a warning.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.exceptions import IntegrityError

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

SIGNING_KEY_ENV = "LOOPML_SIGNING_KEY"
DIGEST_TAG = "loopml.artifact_sha256"
SIGNATURE_TAG = "loopml.signature"
_warned = False


def signing_key() -> bytes | None:
    key = os.environ.get(SIGNING_KEY_ENV)
    return key.encode() if key else None


def artifact_digest(folder: Path) -> str:
    """sha256 over every file under ``folder``: its relative path, then its bytes, in order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def signature(key: bytes, name: str, version: str, digest: str) -> str:
    return hmac.new(key, f"{name}|{version}|{digest}".encode(), hashlib.sha256).hexdigest()


@contextmanager
def downloaded_version(client: MlflowClient, name: str, version: str) -> Iterator[Path]:
    """The version's artifacts in a new local folder, through ``client``'s own stores; the
    folder is removed when the block ends."""
    import mlflow.artifacts

    uri = client.get_model_version_download_uri(name, version)
    target = Path(tempfile.mkdtemp(prefix=f"loopml-{name}-v{version}-"))
    try:
        yield Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(target), tracking_uri=client.tracking_uri
            )
        )
    finally:
        shutil.rmtree(target, ignore_errors=True)


def sign_version(client: MlflowClient, name: str, version: str) -> str | None:
    """Record the digest of the version's artifacts and its signature (no key: nothing)."""
    key = signing_key()
    if key is None:
        log.warning("%s is not set: %s v%s is not signed", SIGNING_KEY_ENV, name, version)
        return None
    with downloaded_version(client, name, version) as local:
        digest = artifact_digest(local)
    client.set_model_version_tag(name, version, DIGEST_TAG, digest)
    client.set_model_version_tag(
        name, version, SIGNATURE_TAG, signature(key, name, version, digest)
    )
    return digest


@contextmanager
def verified_location(
    client: MlflowClient, name: str, version: str, tags: dict[str, str]
) -> Iterator[str]:
    """Where to load the version from, for the length of the block: a local copy whose digest
    and signature were checked (removed afterwards).

    Raises :class:`IntegrityError` with the reason when they do not match. Without a key:
    the registry's own location, with a warning (once per process)."""
    global _warned
    key = signing_key()
    if key is None:
        if not _warned:
            log.warning("%s is not set: models are not verified before loading", SIGNING_KEY_ENV)
            _warned = True
        yield client.get_model_version_download_uri(name, version)
        return
    where = f"{name} v{version}"
    if DIGEST_TAG not in tags or SIGNATURE_TAG not in tags:
        raise IntegrityError(f"{where} is not signed (promoted without {SIGNING_KEY_ENV}?)")
    if not hmac.compare_digest(
        tags[SIGNATURE_TAG], signature(key, name, version, tags[DIGEST_TAG])
    ):
        raise IntegrityError(f"{where}: the signature does not match (another key, or edited tags)")
    with downloaded_version(client, name, version) as local:
        found = artifact_digest(local)
        if not hmac.compare_digest(found, tags[DIGEST_TAG]):
            raise IntegrityError(
                f"{where}: its artifacts changed after promotion (sha256 {found[:12]}..., "
                f"signed {tags[DIGEST_TAG][:12]}...); refusing to load it"
            )
        yield str(local)
