"""Prefect tasks: each one library call (``loopml``) plus its Prefect policy (retries on I/O,
cache key, artifact). No task module imports another."""
