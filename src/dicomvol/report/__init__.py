"""The run report (JSON, Parquet/CSV) and ``describe``: plans -> the rows ``inspect`` prints."""
