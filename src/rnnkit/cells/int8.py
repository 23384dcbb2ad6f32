"""A cell's weight matrix held in int8, for CPU inference (``rnnkit.quantize_dynamic``).

PyTorch's int8 recurrent layers are LSTM and GRU as torch.nn defines them; every other cell
(JANET, IndRNN, Elman, the reset-before GRU, layer-normalised and projected LSTMs) computes
its pre-activations in ``RecurrentCell.project``. An ``Int8Matrix`` stands where the float
weight stood, and ``project`` calls it: v Wᵀ by PyTorch's dynamic int8 GEMM (fbgemm on x86):
W quantized once, per output row, activations quantized per call. The equations of the
cell's step are unchanged, so every cell gets int8 the same way.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


class Int8Matrix(nn.Module):
    """W (out, in) in int8: ``matrix(v)`` is v Wᵀ (B, out), ``matrix[rows]`` the matrix of those rows.

    Each row r is stored as round(W_r / s_r) with s_r = max|W_r| / 127 (symmetric, per row: a gate's rows
    keep their own range, where one scale for the whole matrix would flatten the small ones)."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        if weight.dim() != 2:
            raise ValueError(f"weight: an int8 matrix is 2-D, got shape {tuple(weight.shape)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the notices of torch.ao's and quantized tensors' move to torchao
            if weight.is_quantized:
                stored = weight
            else:
                weight = weight.detach().float().cpu()
                scales = (weight.abs().amax(dim=1) / 127).clamp_min(1e-12).double()
                zeros = torch.zeros_like(scales, dtype=torch.long)
                stored = torch.quantize_per_channel(weight, scales, zeros, 0, torch.qint8)
            self.linear = torch.ao.nn.quantized.dynamic.Linear(weight.shape[1], weight.shape[0], bias_=False)
        self.linear.set_weight_bias(stored, None)
        self.shape = weight.shape
        self._row_blocks: dict[tuple[int, int], Int8Matrix] = {}  # W[a:b], made once (the reset-before GRU's)

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        return self.linear(vector)

    def __getitem__(self, rows: slice) -> Int8Matrix:
        start, stop, step = rows.indices(self.shape[0])
        if step != 1:
            raise ValueError("Int8Matrix: only contiguous row blocks, W[a:b]")
        if (start, stop) not in self._row_blocks:
            whole = self.linear.weight()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # quantized tensors' notice of their move to torchao
                block = torch.quantize_per_channel(  # the same int8 rows and scales: requantized exactly
                    whole.dequantize()[start:stop], whole.q_per_channel_scales()[start:stop],
                    whole.q_per_channel_zero_points()[start:stop], 0, torch.qint8,
                )
            self._row_blocks[(start, stop)] = Int8Matrix(block)
        return self._row_blocks[(start, stop)]

    def extra_repr(self) -> str:
        return f"{self.shape[0]}, {self.shape[1]}, int8 per row"
