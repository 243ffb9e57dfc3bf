"""Derived columns: a small, safe expression language over the columns of a batch.

An expression is parsed with Python's own parser into a syntax tree and checked node by node
against what is allowed; nothing is ever passed to ``eval``. It is evaluated column-wise on a
pandas frame, so collect (the snapshot), validation, training, batch scoring, serving (the model
derives them from raw rows) and monitoring all compute the same values.

Allowed: numbers, strings, column names (``col("name-with-dashes")`` for names that are not
identifiers), ``+ - * / // % **``, comparisons (giving booleans), and the functions in
:data:`FUNCTIONS`: durations of datetime differences in a unit (``minutes(dropoff - pickup)``),
date parts (``hour(t)``), ``log``/``log1p``/``exp``/``sqrt``/``abs``/``clip``/``round``/
``minimum``/``maximum``, string functions (``lower``, ``upper``, ``strip``, ``length``,
``concat``, ``contains``) and ``where(cond, a, b)``, ``isnull(x)``, ``fillna(x, v)``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.exceptions import ConfigError

_UNITS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0, "days": 86400.0}


def _duration(unit: float) -> Callable[[Any], Any]:
    def seconds(x: Any) -> Any:
        return pd.to_timedelta(x).dt.total_seconds() / unit

    return seconds


def _part(name: str) -> Callable[[Any], Any]:
    def part(t: Any) -> Any:
        stamps = pd.to_datetime(t)
        return (stamps.dt.dayofweek if name == "weekday" else getattr(stamps.dt, name)).astype(
            "Float64"
        )

    return part


def _text(s: Any) -> Any:
    return pd.Series(s, dtype="object").astype("string")


FUNCTIONS: dict[str, tuple[int, int, Callable[..., Any], str]] = {
    # name: (min args, max args, implementation, kind of the result)
    **{u: (1, 1, _duration(f), "numeric") for u, f in _UNITS.items()},
    **{p: (1, 1, _part(p), "integer") for p in ("hour", "weekday", "day", "month", "year")},
    "dayofyear": (1, 1, _part("dayofyear"), "integer"),
    "log": (1, 1, lambda x: np.log(x.astype(float)), "numeric"),
    "log1p": (1, 1, lambda x: np.log1p(x.astype(float)), "numeric"),
    "exp": (1, 1, lambda x: np.exp(x.astype(float)), "numeric"),
    "sqrt": (1, 1, lambda x: np.sqrt(x.astype(float)), "numeric"),
    "abs": (1, 1, lambda x: x.abs(), "numeric"),
    "clip": (3, 3, lambda x, lo, hi: x.clip(lo, hi), "numeric"),
    "round": (1, 2, lambda x, n=0: x.round(int(n)), "numeric"),
    "minimum": (2, 2, lambda a, b: np.minimum(a, b), "numeric"),
    "maximum": (2, 2, lambda a, b: np.maximum(a, b), "numeric"),
    "lower": (1, 1, lambda s: _text(s).str.lower(), "categorical"),
    "upper": (1, 1, lambda s: _text(s).str.upper(), "categorical"),
    "strip": (1, 1, lambda s: _text(s).str.strip(), "categorical"),
    "length": (1, 1, lambda s: _text(s).str.len().astype("Float64"), "integer"),
    "concat": (2, 8, lambda *a: _concat(a), "categorical"),
    "contains": (2, 2, lambda s, sub: _text(s).str.contains(str(sub), regex=False), "boolean"),
    "where": (3, 3, lambda c, a, b: _where(c, a, b), "numeric"),
    "isnull": (1, 1, lambda x: pd.Series(x).isna(), "boolean"),
    "fillna": (2, 2, lambda x, v: pd.Series(x).fillna(v), "numeric"),
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}


def _concat(parts: tuple[Any, ...]) -> Any:
    out = _text(parts[0]) if isinstance(parts[0], pd.Series) else str(parts[0])
    for p in parts[1:]:
        out = out + (_text(p) if isinstance(p, pd.Series) else str(p))
    return out


def _where(cond: Any, a: Any, b: Any) -> Any:
    index = cond.index if isinstance(cond, pd.Series) else None
    return pd.Series(np.where(np.asarray(cond, dtype=bool), a, b), index=index)


@dataclass(frozen=True)
class Expression:
    """A checked expression: its source, the columns it reads, the kind it gives."""

    source: str
    tree: ast.Expression
    columns: frozenset[str]
    kind: str

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        value = _Evaluator(frame).visit(self.tree.body)
        if not isinstance(value, pd.Series):  # a constant expression
            value = pd.Series([value] * len(frame), index=frame.index)
        return value


def _kind_of(node: ast.expr) -> str:
    if isinstance(node, ast.Compare):
        return "boolean"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return FUNCTIONS.get(node.func.id, (0, 0, None, "numeric"))[3]
    return "numeric"


class _Checker(ast.NodeVisitor):
    """Refuses every node that is not in the language; collects the columns read."""

    def __init__(self, where: str, known: set[str]) -> None:
        self.where = where
        self.known = known
        self.columns: set[str] = set()

    def fail(self, node: ast.AST, what: str) -> None:
        col = getattr(node, "col_offset", 0) + 1
        raise ConfigError([f"{self.where}: {what} (at character {col})"])

    def generic_visit(self, node: ast.AST) -> None:
        self.fail(node, f"'{type(node).__name__}' is not allowed in an expression")

    def visit_Expression(self, node: ast.Expression) -> None:
        self.visit(node.body)

    def visit_Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, int | float | str | bool):
            self.fail(node, f"constant {node.value!r} is not a number or a string")

    def visit_Name(self, node: ast.Name) -> None:
        self._column(node, node.id)

    def _column(self, node: ast.AST, name: str) -> None:
        if name not in self.known:
            self.fail(node, f"unknown column '{name}'")
        self.columns.add(name)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) not in _BINARY:
            self.fail(node, f"operator '{type(node.op).__name__}' is not allowed")
        self.visit(node.left)
        self.visit(node.right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if not isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
            self.fail(node, f"operator '{type(node.op).__name__}' is not allowed")
        self.visit(node.operand)

    def visit_Compare(self, node: ast.Compare) -> None:
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            self.fail(node, "only one comparison (<, <=, >, >=, ==, !=) at a time")
        self.visit(node.left)
        self.visit(node.comparators[0])

    def visit_Call(self, node: ast.Call) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if node.keywords:
            self.fail(node, "keyword arguments are not allowed")
        if name == "col":
            arg = node.args[0] if len(node.args) == 1 else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                self.fail(node, 'col() takes one column name: col("my-column")')
            self._column(node, arg.value)
            return
        if name not in FUNCTIONS:
            allowed = ", ".join(sorted([*FUNCTIONS, "col"]))
            self.fail(
                node, f"unknown function '{name or ast.unparse(node.func)}' (allowed: {allowed})"
            )
        low, high = FUNCTIONS[name][:2]
        if not low <= len(node.args) <= high:
            self.fail(node, f"{name}() takes {low}-{high} argument(s), got {len(node.args)}")
        for arg in node.args:
            self.visit(arg)


class _Evaluator(ast.NodeVisitor):
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        return self.frame[node.id]

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        return _BINARY[type(node.op)](self.visit(node.left), self.visit(node.right))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return ~value if isinstance(value, pd.Series) else not value
        return -value if isinstance(node.op, ast.USub) else value

    def visit_Compare(self, node: ast.Compare) -> Any:
        op = _COMPARE[type(node.ops[0])]
        return op(self.visit(node.left), self.visit(node.comparators[0]))

    def visit_Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)
        if node.func.id == "col":
            return self.frame[node.args[0].value]  # type: ignore[attr-defined]
        return FUNCTIONS[node.func.id][2](*(self.visit(a) for a in node.args))


def parse(source: str, where: str, known: set[str]) -> Expression:
    """Check ``source`` against the language; ``where`` (the key path) names it in errors."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(
            [f"{where}: not a valid expression: {exc.msg} (at character {exc.offset})"]
        ) from None
    checker = _Checker(where, known)
    checker.visit(tree)
    return Expression(source, tree, frozenset(checker.columns), _kind_of(tree.body))


def derive_columns(
    frame: pd.DataFrame, expressions: Mapping[str, Expression], kinds: Mapping[str, str]
) -> pd.DataFrame:
    """``frame`` with every derived column added (in declaration order); not modified."""
    if not expressions:
        return frame
    out = frame.copy(deep=False)
    for name, expr in expressions.items():
        missing = sorted(expr.columns - set(out.columns))
        if missing:
            raise ConfigError([f"derived column '{name}' needs column(s) {missing}"], "data")
        value = expr.evaluate(out)
        kind = kinds[name]
        if kind in ("numeric", "integer"):
            value = pd.to_numeric(value, errors="coerce").astype(float)
        elif kind == "boolean" or kind == "categorical":
            value = value.astype(object).where(value.notna(), None)
        out[name] = value.to_numpy() if isinstance(value, pd.Series) else value
    return out
