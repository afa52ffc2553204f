"""A run of a pipeline: the service (``service.py``), the seam features attach through
(``features.py``), the one signal handler (``signals.py``) and the run records
(``records.py``). Features import only :mod:`attest_cli.runner.features`."""
