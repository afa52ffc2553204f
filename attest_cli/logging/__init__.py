"""Logs: structured (JSON or text) log lines on stderr, and the observer that logs run events."""
