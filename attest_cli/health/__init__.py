"""Health: the check protocol, the built-in checks and the ``attest.health_checks`` plug-ins."""
