"""Lifecycle stages, one module each: small typed functions with Prefect's ``@task`` on top."""
