"""The loopml shell: the ``loopml`` command, the local stack (``up``/``down``), deployments,
the demo, and the DVC stage commands. It sits on top: it imports the flows, the tasks and the
library; nothing imports it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parents[1]
"""The repository: where ``flows/`` and ``tasks/`` live (they are not installed packages)."""


def use_pipeline_code() -> None:
    """Make ``flows`` and ``tasks`` importable here and in every process started from here
    (flow runs of served deployments, workers)."""
    if not (CODE_ROOT / "flows").is_dir():
        raise RuntimeError(
            f"no flows/ beside {Path(__file__).parent}: run loopml from a clone of the repository "
            "(pip install -e .)"
        )
    root = str(CODE_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
