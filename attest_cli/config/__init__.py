"""Layered configuration: one schema (``schema.py``) and the layers that feed it (``layers.py``)."""
