"""Derived objects on an image grid: SEG and RTSTRUCT label maps, RTDOSE and parametric maps."""
