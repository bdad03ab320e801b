"""Records -> volume plans, pure and pixel-free: grouping, splits, 4D, exact/split/resample/skip."""
