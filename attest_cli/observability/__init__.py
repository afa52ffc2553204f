"""Logs, metrics, traces, history and health: observers of the engine's events."""
