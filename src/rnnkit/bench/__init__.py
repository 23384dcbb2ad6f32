"""``rnnkit bench``: rnnkit's kernels timed against torch.nn, the naive loop and the GEMM floor."""

from rnnkit.bench.command import bench_command

__all__ = ["bench_command"]
