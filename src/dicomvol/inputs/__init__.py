"""Inputs: paths and manifests -> candidate files, and the one file-system layer every read uses."""
