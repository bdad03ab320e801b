"""Frames -> arrays: decoding (native fast path, pydicom plugins), assembly, resampling."""
