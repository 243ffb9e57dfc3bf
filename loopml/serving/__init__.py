"""Serving the registry's champion over REST (see :mod:`loopml.serving.app`)."""
