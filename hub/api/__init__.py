"""HTTP API: external ingest, directory admin, health, metrics, API documents."""
