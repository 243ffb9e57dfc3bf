"""Prefect flows: wiring only, every step a task from ``tasks/`` called with keywords.

The stage flows (``collect``, ``validate``, ``features``, ``train``, ``evaluate``) are what the
DVC stage commands run; ``training`` runs them as subflows, then promotes.
"""
