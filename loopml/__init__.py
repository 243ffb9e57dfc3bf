"""loopml: closed-loop MLOps for tabular machine learning."""

__version__ = "0.1.0"
