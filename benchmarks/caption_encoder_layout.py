"""The caption task's image encoder two ways, timed in one run: its convolutions on channels-last activations (what
``ImageEncoder`` does) and on the default layout. One training step of the encoder each (forward, backward) on a
batch of 64×64 images, alternated, the best of ``--repeats`` (``rnnkit.bench``'s round robin); the two outputs are
checked equal first.

    OMP_NUM_THREADS=1 python benchmarks/caption_encoder_layout.py [--batch-size 64] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch

from rnnkit.bench.measure import round_robin
from rnnkit.models.image_encoder import ImageEncoder


def default_layout(encoder: ImageEncoder, pixels: torch.Tensor) -> torch.Tensor:
    """``ImageEncoder.forward`` without the change of layout."""
    grid = encoder.network((pixels.float() / 255.0 - encoder.mean) / encoder.std)
    return grid.flatten(2).permute(2, 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    encoder = ImageEncoder("resnet")
    pixels = torch.randint(0, 256, (args.batch_size, 3, args.image_size, args.image_size), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(encoder(pixels), default_layout(encoder, pixels), atol=1e-4, rtol=1e-4)
    best = round_robin({"channels-last": lambda: encoder(pixels).square().mean().backward(),
                        "default": lambda: default_layout(encoder, pixels).square().mean().backward()}, args.repeats)
    fast, slow = best["channels-last"], best["default"]
    print(f"encoder resnet 32-64-128-256, {args.batch_size} images of {args.image_size}x{args.image_size}, "
          f"{torch.get_num_threads()} thread(s), a training step: channels-last {fast:.3f} s, default {slow:.3f} s: "
          f"{slow / fast:.2f}x")


if __name__ == "__main__":
    main()
