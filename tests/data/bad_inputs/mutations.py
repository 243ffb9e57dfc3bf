"""How each bad input of cases.yaml is made from a sample of the real Adult data: one function per
mutation, each writing the file the case's source reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

Mutation = Callable[[pd.DataFrame, Path], None]
MUTATIONS: dict[str, Mutation] = {}


def mutation(fn: Mutation) -> Mutation:
    MUTATIONS[fn.__name__] = fn
    return fn


def _csv(frame: pd.DataFrame, path: Path, **kwargs: object) -> None:
    frame.to_csv(path, index=False, **kwargs)


def _with(frame: pd.DataFrame, column: str, rows: slice, value: object) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column].astype(object)
    out.loc[out.index[rows], column] = value
    return out


# ---------------------------------------------------------------- schema
@mutation
def missing_column(f: pd.DataFrame, p: Path) -> None:
    _csv(f.drop(columns=["occupation"]), p)


@mutation
def renamed_column(f: pd.DataFrame, p: Path) -> None:
    _csv(f.rename(columns={"hours-per-week": "hours_per_week"}), p)


@mutation
def upper_case_header(f: pd.DataFrame, p: Path) -> None:
    _csv(f.rename(columns=str.upper), p)


@mutation
def extra_column(f: pd.DataFrame, p: Path) -> None:
    _csv(f.assign(row_note="x"), p)


@mutation
def shuffled_columns(f: pd.DataFrame, p: Path) -> None:
    _csv(f[list(reversed(f.columns))], p)


# ---------------------------------------------------------------- delimiters and encodings
@mutation
def semicolons(f: pd.DataFrame, p: Path) -> None:
    _csv(f, p, sep=";")


@mutation
def tabs(f: pd.DataFrame, p: Path) -> None:
    _csv(f, p, sep="\t")


@mutation
def pipes(f: pd.DataFrame, p: Path) -> None:
    _csv(f, p, sep="|")


@mutation
def latin1(f: pd.DataFrame, p: Path) -> None:
    out = f.copy()
    out.loc[out["native-country"] == "Mexico", "native-country"] = "México"
    out.loc[out.index[:3], "native-country"] = "México"
    _csv(out, p, encoding="latin-1")


@mutation
def padded_values(f: pd.DataFrame, p: Path) -> None:
    out = f.copy()
    for c in ("workclass", "education", "sex"):
        out[c] = ("  " + out[c].astype(str) + "  ").where(out[c].notna())
    _csv(out, p)


# ---------------------------------------------------------------- not tabular
@mutation
def html_page(f: pd.DataFrame, p: Path) -> None:
    p.write_text("<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n")


@mutation
def json_body(f: pd.DataFrame, p: Path) -> None:
    p.write_text(f.head(20).to_json(orient="records"))


@mutation
def binary_file(f: pd.DataFrame, p: Path) -> None:
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)


@mutation
def empty_file(f: pd.DataFrame, p: Path) -> None:
    p.write_bytes(b"")


@mutation
def header_only(f: pd.DataFrame, p: Path) -> None:
    _csv(f.head(0), p)


@mutation
def parquet_named_csv(f: pd.DataFrame, p: Path) -> None:
    f.to_parquet(p)


@mutation
def truncated_parquet(f: pd.DataFrame, p: Path) -> None:
    f.to_parquet(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


@mutation
def truncated_csv(f: pd.DataFrame, p: Path) -> None:
    """Cut inside a quoted field: the file ends in the middle of a string."""
    out = f.copy()
    out["occupation"] = out["occupation"].astype(str) + ', "x"'
    _csv(out, p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


# ---------------------------------------------------------------- types and values
@mutation
def text_in_numeric(f: pd.DataFrame, p: Path) -> None:
    _csv(_with(f, "age", slice(0, 5), "abc"), p)


@mutation
def parquet_numbers_as_text(f: pd.DataFrame, p: Path) -> None:
    f.assign(age=f["age"].astype(str)).to_parquet(p)


@mutation
def positive_infinity(f: pd.DataFrame, p: Path) -> None:
    _csv(_with(f, "capital-gain", slice(0, 3), np.inf), p)


@mutation
def negative_infinity(f: pd.DataFrame, p: Path) -> None:
    _csv(_with(f, "capital-loss", slice(0, 3), -np.inf), p)


@mutation
def beyond_float_range(f: pd.DataFrame, p: Path) -> None:
    _csv(_with(f, "fnlwgt", slice(0, 2), "1e400"), p)


@mutation
def huge_age(f: pd.DataFrame, p: Path) -> None:
    _csv(_with(f, "age", slice(0, 1), 1e308), p)


@mutation
def negative_age(f: pd.DataFrame, p: Path) -> None:
    _csv(_with(f, "age", slice(0, 4), -3), p)


@mutation
def age_above_bound(f: pd.DataFrame, p: Path) -> None:
    _csv(_with(f, "age", slice(0, 1), 200), p)


@mutation
def all_null_column(f: pd.DataFrame, p: Path) -> None:
    _csv(f.assign(occupation=np.nan), p)


@mutation
def too_few_rows(f: pd.DataFrame, p: Path) -> None:
    _csv(f.head(50), p)


# ---------------------------------------------------------------- the target
@mutation
def one_class(f: pd.DataFrame, p: Path) -> None:
    _csv(f.assign(income="<=50K"), p)


@mutation
def unseen_label(f: pd.DataFrame, p: Path) -> None:
    _csv(_with(f, "income", slice(0, 300), "unknown"), p)


@mutation
def null_target(f: pd.DataFrame, p: Path) -> None:
    _csv(_with(f, "income", slice(0, 10), None), p)


# ---------------------------------------------------------------- duplicates and shifts
@mutation
def duplicate_rows(f: pd.DataFrame, p: Path) -> None:
    _csv(pd.concat([f, f.head(40)], ignore_index=True), p)


@mutation
def out_of_profile_hours(f: pd.DataFrame, p: Path) -> None:
    _csv(_with(f, "hours-per-week", slice(0, 200), 400), p)


@mutation
def unchanged(f: pd.DataFrame, p: Path) -> None:
    _csv(f, p)
