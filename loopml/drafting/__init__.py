"""``loopml init --from``: a complete, commented params.yaml drafted from a sample of the data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from loopml.config import Params, params_from_dict
from loopml.drafting.infer import Draft, infer
from loopml.drafting.render import render
from loopml.drafting.sample import Sample, read_sample


@dataclass(frozen=True)
class Drafted:
    text: str
    """The params.yaml, with comments."""
    params: Params
    draft: Draft
    sample: Sample


def draft_params(
    location: str,
    params_path: Path,
    target: str | None = None,
    ordered: bool = False,
    table: str | None = None,
    query: str | None = None,
) -> Drafted:
    """Draft params.yaml for the data at ``location``; the draft is loaded and validated as a
    params.yaml would be before it is returned."""
    sample = read_sample(location, table=table, query=query)
    draft = infer(sample.frame, target, ordered)
    text = render(draft, sample, location, params_path.parent)
    params = params_from_dict(
        yaml.safe_load(text), root=params_path.parent, source=str(params_path)
    )
    return Drafted(text=text, params=params, draft=draft, sample=sample)


__all__ = ["Draft", "Drafted", "Sample", "draft_params", "infer", "read_sample"]
