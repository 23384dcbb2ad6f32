"""Training: typed configuration, the fit loop, checkpoints, run folders, multi-process runs."""
