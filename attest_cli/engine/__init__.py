"""The engine: runs the DAG and publishes what happens as events; it renders nothing."""
