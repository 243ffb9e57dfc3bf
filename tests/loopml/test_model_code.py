"""The code a logged model carries: what its pickled objects import, not the whole package."""

from __future__ import annotations

from pathlib import Path

from loopml.model_code import PACKAGE, model_code, needed_files


def test_the_model_carries_its_own_modules_and_not_the_platform() -> None:
    files = {p.as_posix() for p in needed_files()}
    assert {"__init__.py", "pyfunc.py", "lightning_model.py", "transformers.py"} <= files
    assert {"config/__init__.py", "config/params.py"} <= files  # imported by what it carries
    everything = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
    platform = {"serving/app.py", "quality/gx_run.py", "monitoring/drift.py", "promotion.py"}
    assert platform <= everything and not platform & files
    assert len(files) < len(everything) / 2


def test_the_copy_is_a_package_folder_removed_afterwards() -> None:
    with model_code() as code:
        assert code.name == "loopml"
        copied = {p.relative_to(code) for p in code.rglob("*.py")}
        assert copied == set(needed_files())
        held = code.parent
    assert not Path(held).exists()
