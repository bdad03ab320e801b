"""Synthetic DICOM with known ground truth, for the demo, the benchmarks and the tests.

The library never imports this package.
"""
