"""Per-output values from headers: sidecar, BIDS keys, slice timing, SUV, diffusion tables."""
