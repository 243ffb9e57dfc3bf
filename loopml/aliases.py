"""Registry alias names: the only place they are spelled."""

from __future__ import annotations

CHAMPION = "champion"
"""The served model version."""
PREVIOUS = "previous"
"""The champion before the last promotion (``loopml rollback`` restores it)."""
CHALLENGER = "challenger"
"""The newest version that the promotion policy refused."""
