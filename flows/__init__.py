"""Prefect flows: wiring only. One flow per job users run."""
