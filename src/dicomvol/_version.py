"""The package version (one place; read by the report, the sidecars and ``--version``)."""

__version__ = "0.1.0"
