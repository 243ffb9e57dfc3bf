"""Reuse keys and library upgrades: a fit, a feature set or a validation report kept under a key
is not given back after a library it depends on changes version, and only such a library counts.

Only one version of each library can be installed here, so the tests change what
``importlib.metadata`` reports for one name (a stand-in for an upgrade, nothing else patched).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest

from loopml import caching
from loopml.config import CandidateConfig, FeaturesConfig, LightningConfig, ValidateConfig
from loopml.feature_reuse import features_key
from loopml.quality.reuse import validation_key
from tests.loopml.test_features import SCHEMA_CFG

REAL_VERSION = metadata.version
LOGREG = CandidateConfig(name="logreg", kind="linear")


@pytest.fixture
def upgrade(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Report another version for one library from then on."""

    def _upgrade(name: str) -> None:
        def version(dist: str) -> str:
            return "999.0" if dist == name else REAL_VERSION(dist)

        monkeypatch.setattr(caching.metadata, "version", version)
        caching.library_versions.cache_clear()

    caching.library_versions.cache_clear()
    yield _upgrade
    caching.library_versions.cache_clear()


def _keys(suite: Path) -> dict[str, str]:
    return {
        "fit": caching.fit_key("data", LOGREG, LightningConfig(), 0, 42, "roc_auc"),
        "version": caching.version_fingerprint("data", "params"),
        "features": features_key("v1", SCHEMA_CFG, FeaturesConfig(), 42),
        "validation": validation_key("v1", suite, SCHEMA_CFG, ValidateConfig()),
    }


@pytest.mark.parametrize(
    ("library", "changed"),
    [
        ("scikit-learn", {"fit", "version", "features"}),
        ("torch", {"fit", "version"}),
        ("great-expectations", {"validation"}),
        ("pandas", {"features", "validation"}),
        ("numpy", {"fit", "version", "features", "validation"}),
        ("requests", set()),
    ],
)
def test_a_key_changes_with_the_libraries_it_depends_on_only(
    tmp_path: Path, upgrade: Callable[[str], None], library: str, changed: set[str]
) -> None:
    suite = tmp_path / "suite.json"
    suite.write_text("{}")
    before = _keys(suite)
    upgrade(library)
    after = _keys(suite)
    assert {name for name in before if before[name] != after[name]} == changed


def test_a_library_that_is_not_installed_is_named_absent() -> None:
    versions = caching.library_versions(("scikit-learn", "no-such-library-loopml"))
    sklearn = REAL_VERSION("scikit-learn")
    assert versions == f"scikit-learn=={sklearn},no-such-library-loopml==absent"
