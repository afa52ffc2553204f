"""Metrics and run history: the catalogue and its tally, the SQLite history, the Prometheus
exposition (live endpoint, ``attest serve``, Pushgateway, textfile), dashboards and alerts."""
