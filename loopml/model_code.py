"""The loopml code a logged model carries (MLflow's ``code_paths``), so that it loads where
loopml is not installed: the modules reachable from the model's entry modules through loopml's
own imports (module level and inside functions), copied into a temporary package folder.

About a third of the package: every file is one request to upload, and one to download each
time the model is evaluated, signed, verified or served (through a tracking server, the cost
that counts).
"""

from __future__ import annotations

import ast
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ENTRY_MODULES = ("loopml.pyfunc", "loopml.lightning_model", "loopml.features")
"""What a pickled model refers to: the pyfunc wrapper, the network, the fitted transformers."""


def _file_of(module: str) -> Path | None:
    parts = module.split(".")[1:]  # below the package folder
    base = PACKAGE.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "loopml")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "loopml":
            found.add(node.module or "")
            found.update(f"{node.module}.{a.name}" for a in node.names)  # submodules
    return found


@lru_cache(maxsize=1)
def needed_files() -> tuple[Path, ...]:
    """The package's files that the entry modules need, relative to the package folder."""
    seen: set[str] = set()
    files: set[Path] = set()
    todo = list(ENTRY_MODULES)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _file_of(module)
        if path is None:  # a name imported from a module, not a module
            continue
        files.add(path.relative_to(PACKAGE))
        parents = module.split(".")
        todo.extend(".".join(parents[:i]) for i in range(1, len(parents)))  # __init__ files
        todo.extend(_imports(path))
    return tuple(sorted(files))


@contextmanager
def model_code() -> Iterator[Path]:
    """A temporary ``loopml`` package folder holding :func:`needed_files` (for ``code_paths``)."""
    where = Path(tempfile.mkdtemp(prefix="loopml-model-code-"))
    try:
        for rel in needed_files():
            target = where / "loopml" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PACKAGE / rel, target)
        yield where / "loopml"
    finally:
        shutil.rmtree(where, ignore_errors=True)
