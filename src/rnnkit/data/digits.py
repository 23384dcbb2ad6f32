"""Handwritten digits read pixel by pixel: a small offline stand-in for sequential MNIST.

``sklearn.datasets.load_digits`` ships 1,797 8x8 images (values 0..16) inside scikit-learn,
so nothing is downloaded. Each image becomes a sequence of 64 one-pixel steps in row-major
order, or in a fixed random order (``permute``), as permuted sequential MNIST does
(Le et al. 2015): the permutation spreads neighbouring pixels far apart in time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnkit.errors import UserError

DIGIT_PIXELS = 64
DIGIT_CLASSES = 10
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, validation, test; stratified by class


@dataclass
class DigitSplit:
    inputs: torch.Tensor  # (64, N, 1) pixel intensities in [0, 1]
    labels: torch.Tensor  # (N,) classes 0..9


def load_digit_sequences(permute: bool, split_seed: int = 0, permutation_seed: int = 0) -> dict[str, DigitSplit]:
    """The train, validation and test splits, each stratified and fixed by ``split_seed``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("the digits task needs scikit-learn: pip install 'rnnkit[tasks]'") from None
    digits = load_digits()
    images = torch.tensor(digits.data, dtype=torch.float32)  # (N, 64), values 0..16
    labels = torch.tensor(digits.target, dtype=torch.long)
    sequences = digit_sequences(images, permute, permutation_seed)  # (64, N, 1)
    parts = stratified_split(labels, split_seed)
    return {name: DigitSplit(sequences[:, rows].contiguous(), labels[rows]) for name, rows in parts.items()}


def digit_sequences(images: torch.Tensor, permute: bool, permutation_seed: int = 0) -> torch.Tensor:
    """(N, 64) images with values 0..16, as load_digits gives them, -> (64, N, 1) sequences in [0, 1],
    read in row-major order or in the fixed random order of ``permutation_seed``."""
    images = images / 16.0
    if permute:
        order = torch.randperm(DIGIT_PIXELS, generator=torch.Generator().manual_seed(permutation_seed))
        images = images[:, order]
    return images.t().unsqueeze(-1)


def parse_digit_image(text: str) -> torch.Tensor:
    """One image written as 64 comma-separated pixel values 0..16 (a row of load_digits().data) -> (64,)."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != DIGIT_PIXELS:
        raise ValueError(f"expected {DIGIT_PIXELS} comma-separated pixel values (an 8x8 image, row by row), "
                         f"got {len(parts) if text.strip() else 0}")
    values = []
    for number, part in enumerate(parts, start=1):
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"pixel {number} is {part!r}, not a number; write 64 numbers from 0 to 16") from None
        if not 0 <= value <= 16:
            raise ValueError(f"pixel {number} is {value:g}; pixel values go from 0 to 16 (as in load_digits)")
        values.append(value)
    return torch.tensor(values)


def stratified_split(labels: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Row indices per split, each class cut in the same proportions."""
    from sklearn.model_selection import train_test_split

    rows, classes = torch.arange(labels.numel()).numpy(), labels.numpy()
    train_fraction, validation_fraction, _ = SPLIT_FRACTIONS
    train, rest = train_test_split(rows, train_size=train_fraction, stratify=classes, random_state=seed)
    validation, test = train_test_split(
        rest, train_size=validation_fraction / (1 - train_fraction), stratify=classes[rest], random_state=seed
    )
    return {name: torch.as_tensor(part).sort().values for name, part in
            (("train", train), ("validation", validation), ("test", test))}
