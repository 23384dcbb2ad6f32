"""Convolutional image encoders trained from scratch: an image in, its last feature map out as a grid of annotation vectors.

    pixels (B, 3, H, W) uint8 -> scaled to [0, 1], normalised -> ResNet -> (B, D, h, w) -> annotations (h*w, B, D)

Each annotation vector describes one region of the image (Xu et al. 2015's a_i); a captioning
decoder attends over them. The network is a ResNet of basic blocks (He et al. 2016) with group
normalisation (Wu & He 2018) in place of batch normalisation, so that no image's features depend on
the others in its batch: several processes train what one process does, predict reads one image
as training read it, and small batches are fine. Two layouts (``--encoder``):

    resnet             for small images (the emoji's 64×64): a 3×3 stem, then a stage per --encoder-widths
                       entry of --encoder-blocks blocks, the first three halving the grid (64×64 -> 8×8)
    resnet18/resnet34  ResNet-18/34 as published, for photos: a 7×7 stride-2 stem and max-pooling, stages of
                       64, 128, 256, 512 channels (2-2-2-2 or 3-4-6-3 blocks), 224×224 -> 7×7; untrained

(torchvision's ``resnet18(weights=None)`` is the same network with batch normalisation; but torchvision's wheels on
PyPI link PyTorch's CUDA libraries and do not import under the CPU build of torch, so the block
is written here.) Pixels are normalised inside the model (ImageNet's channel means and
deviations), so a checkpoint reads raw images the same way at training and at predict.
"""

from __future__ import annotations

import torch
from torch import nn

ENCODERS = ("resnet", "resnet18", "resnet34")
PUBLISHED = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}  # blocks per stage
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
NORM_GROUPS = 8  # channel groups normalised together (every width here is a multiple of 8)


def normalization(channels: int) -> nn.Module:
    return nn.GroupNorm(NORM_GROUPS, channels)


class BasicBlock(nn.Module):
    """y = relu(norm(conv(relu(norm(conv(x))))) + shortcut(x)); the shortcut a strided 1×1 convolution where the shape
    changes (He et al. 2016, option B)."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = normalization(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = normalization(channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                                          normalization(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(y)) + self.shortcut(x))


class ImageEncoder(nn.Module):
    def __init__(self, name: str, widths: tuple[int, ...] = (32, 64, 128, 256), blocks: int = 1) -> None:
        super().__init__()
        if name == "resnet":
            stem = [nn.Conv2d(3, widths[0], 3, padding=1, bias=False), normalization(widths[0]), nn.ReLU()]
            stages = [(width, blocks, 2 if stage < 3 else 1) for stage, width in enumerate(widths)]
        else:
            widths = (64, 128, 256, 512)
            stem = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), normalization(64), nn.ReLU(),
                    nn.MaxPool2d(3, stride=2, padding=1)]
            stages = [(width, count, 1 if stage == 0 else 2) for stage, (width, count)
                      in enumerate(zip(widths, PUBLISHED[name]))]
        layers, previous = stem, widths[0]
        for width, count, stride in stages:
            for index in range(count):
                layers.append(BasicBlock(previous, width, stride if index == 0 else 1))
                previous = width
        self.network = nn.Sequential(*layers)
        self.output_size = previous  # D
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, H, W) uint8 -> annotations (h*w, B, D), regions in row-major order."""
        normalised = (pixels.float() / 255.0 - self.mean) / self.std
        # channels-last: oneDNN's CPU convolutions and their gradients run faster on it (a training step 1.39x,
        # benchmarks/caption_encoder_layout.py); the weights keep the default layout, so checkpoints save them as
        # they are
        grid = self.network(normalised.contiguous(memory_format=torch.channels_last))  # (B, D, h, w)
        return grid.flatten(2).permute(2, 0, 1)

    def pooled(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, D): the mean annotation, what the nearest-neighbour baseline compares."""
        return self(pixels).mean(dim=0)


def grid_side(encoder: ImageEncoder, image_size: int) -> int:
    """The side of the annotation grid for square images of ``image_size`` pixels."""
    training = encoder.training
    encoder.eval()
    with torch.no_grad():
        regions = encoder(torch.zeros(1, 3, image_size, image_size, dtype=torch.uint8)).shape[0]
    encoder.train(training)
    return int(round(regions ** 0.5))
