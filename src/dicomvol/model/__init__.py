"""Pure values, no file I/O: records, plans, volumes and their geometry (LPS)."""
