"""Features that are not built twice: ``features.json`` keeps the key of what built them (the
snapshot, the declared schema, the feature settings, the seed and the code of the feature
steps); the same key later gives that feature set back without reading the snapshot, splitting
or fitting the transformers. Like validation reuse (:mod:`loopml.quality.reuse`)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from loopml.caching import library_versions
from loopml.config import FeaturesConfig, SchemaConfig
from loopml.exceptions import DataValidationError
from loopml.features import (
    ENCODINGS,
    SPLITS,
    FeatureSet,
    load_feature_set,
    matrix_file,
    transformer_file,
)

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
_CODE = [
    _HERE / name
    for name in (
        "derive.py",
        "feature_reuse.py",
        "features.py",
        "schema.py",
        "splits.py",
        "transformers.py",
    )
]
"""The modules whose change changes the features built from a snapshot."""
LIBRARIES = ("numpy", "pandas", "pyarrow", "scikit-learn")
"""The libraries that split, transform and store the features (and pickle the transformers)."""


def features_key(
    snapshot_version: str, schema: SchemaConfig, cfg: FeaturesConfig, seed: int
) -> str:
    """What a feature set depends on, as one hash (the libraries' versions included)."""
    h = hashlib.sha256(f"{snapshot_version}|{seed}|{library_versions(LIBRARIES)}".encode())
    for section in (schema, cfg):
        h.update(json.dumps(section.model_dump(mode="json"), sort_keys=True).encode())
    for module in _CODE:
        h.update(module.read_bytes())
    return h.hexdigest()


def feature_files() -> list[str]:
    """Every file a complete feature set holds besides ``features.json``."""
    per_split = [
        name
        for split in SPLITS
        for name in (
            f"{split}.parquet",
            f"y_{split}.npy",
            *(matrix_file(split, encoding) for encoding in ENCODINGS),
        )
    ]
    return per_split + [transformer_file(encoding) for encoding in ENCODINGS]


def previous_features(out_dir: Path, key: str) -> FeatureSet | None:
    """The feature set in ``out_dir`` if it was built under ``key`` and every file is there."""
    try:
        features = load_feature_set(out_dir)
    except (DataValidationError, OSError, ValueError, TypeError):  # none, or another version's
        return None
    if (
        not key
        or features.key != key
        or not all((out_dir / name).is_file() for name in feature_files())
    ):
        return None
    log.info(
        "features of %s: built before from the same snapshot, schema, settings and code (%s); "
        "not built again",
        features.data_version[:12],
        out_dir,
    )
    return features
