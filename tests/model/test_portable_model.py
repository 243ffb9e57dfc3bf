"""A registered model carries the loopml code it needs: it loads and predicts in a Python
process where loopml is not installed, from its own ``code/`` folder only.

Real parts: the versions of the session's registry (a real MLflow store), MLflow's own loader,
a separate interpreter whose import system has the repository and the editable install of
loopml removed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopml.integrity import downloaded_version

pytestmark = [pytest.mark.model]

# Run in a separate interpreter: loopml is made unimportable except from the model's code/.
LOAD_ELSEWHERE = """
import json, sys
sys.meta_path = [f for f in sys.meta_path if "__editable__" not in repr(f)]
sys.path_hooks = [h for h in sys.path_hooks if "__editable__" not in repr(h)]
sys.path = [p for p in sys.path if p not in ("", ".", sys.argv[3])]
sys.path_importer_cache.clear()
try:
    import loopml  # noqa: F401
    raise SystemExit("loopml is still importable: the test proves nothing")
except ImportError:
    pass
import pandas as pd
import mlflow.pyfunc
model = mlflow.pyfunc.load_model(sys.argv[1])
import loopml
rows = pd.DataFrame(json.loads(open(sys.argv[2]).read()))
out = model.predict(rows)
print(json.dumps({"loopml": loopml.__file__, "rows": len(out)}))
"""


@pytest.mark.parametrize("index", [0, 1], ids=["logreg", "hgb"])
def test_a_registered_model_loads_and_predicts_without_loopml_installed(
    registry: dict[str, Any], tmp_path: Path, index: int
) -> None:
    client = registry["tracking"].client()
    rows = registry["test_rows"].head(5).drop(columns=["churned", "customer_id"])
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(rows.to_json(orient="records", date_format="iso"))
    repo = str(Path(__file__).resolve().parents[2])
    version = registry["versions"][index]
    with downloaded_version(client, "churn-classifier", version) as local:
        done = subprocess.run(
            [sys.executable, "-c", LOAD_ELSEWHERE, str(local), str(rows_file), repo],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        said = json.loads(done.stdout.strip().splitlines()[-1])
        assert said["loopml"].startswith(str(local / "code")), said
        assert said["rows"] == 5
