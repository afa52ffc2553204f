"""The pipeline: its model, the loader of ``attest.yaml`` and the DAG over its steps."""
