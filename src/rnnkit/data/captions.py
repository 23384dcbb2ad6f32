"""Captioned images: the emoji set with its two test protocols, and your images with captions in the usual forms.

Captions files read (``read_captions``), each naming images in a folder (``images``):
- Flickr8k's ``Flickr8k.token.txt``: ``IMAGE#N<TAB>caption`` a line, several lines per image;
- Karpathy's split files (``dataset_flickr8k.json``, ``dataset_coco.json``): ``{"images": [{"filename",
  "filepath"?, "split", "sentences": [{"raw", "tokens"}]}]}``, which also say each image's split
  (``restval`` counts as training, as in Karpathy's code);
- COCO's captions JSON (``captions_train2014.json``): ``{"images": [{"id", "file_name"}],
  "annotations": [{"image_id", "caption"}]}``.
An image's references are all its captions. A captions file that names an image that does not
exist, or an image without a caption, stops the run naming the file (and line).

The emoji set (``../shared/data/emoji``, ``emoji_splits``): each of the 3,786 emoji has a 64×64
image by two artists (Google's Noto, ``google/64/``; Twitter's Twemoji, ``twitter/64/``, the same
file names) and its name from ``emoji.json``. A skin-tone variant has no name of its own there;
Unicode's CLDR names it by its base then its tones, a repeated tone said once::

    THUMBS UP + 1F3FD                          thumbs up: medium skin tone
    COUPLE WITH HEART: MAN, MAN + 1F3FB-1F3FC  couple with heart: man, man, light skin tone, medium-light skin tone
    PEOPLE HOLDING HANDS + 1F3FB-1F3FB         people holding hands: light skin tone

Two protocols (``--protocol``):

    unseen-artist       train on Google's images of 90% of the emoji, validate on Google's images of the
                        other 10%, test on Twitter's images of the trained emoji: the same names, drawn by
                        another hand
    unseen-composition  hold out a seeded tenth of the composed emoji (skin-tone variants and joined (ZWJ)
                        sequences) for testing and a twentieth for validation, on both artists, keeping only
                        those whose every part (code point) and every word occurs in the emoji trained on;
                        train on both artists' images of the rest

Words (``caption_words``) are lower-cased with punctuation split off, the same rule for every
captions file and for the emoji names.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from rnnkit.data.batch import Batch
from rnnkit.data.text import read_text_file
from rnnkit.data.whole_sequences import ShuffledRows
from rnnkit.errors import UserError

EMOJI = "../shared/data/emoji"
ARTISTS = ("google", "twitter")
PROTOCOLS = ("unseen-artist", "unseen-composition")
# Fitzpatrick modifiers, as CLDR names them
TONES = {"1F3FB": "light skin tone", "1F3FC": "medium-light skin tone", "1F3FD": "medium skin tone",
         "1F3FE": "medium-dark skin tone", "1F3FF": "dark skin tone"}
JOINER, PRESENTATION = "200D", "FE0F"  # zero-width joiner; variation selector 16 (not a part of its own)
VALIDATION_SHARE = 0.1  # unseen-artist: the emoji validated on
COMPOSED_TEST_SHARE, COMPOSED_VALIDATION_SHARE = 0.1, 0.05  # unseen-composition: of the composed emoji
_WORD = re.compile(r"\w+|[^\w\s]")


def caption_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks (``thumbs up: medium skin tone`` -> thumbs up : medium skin tone)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def caption_text(words: list[str]) -> str:
    """Words as text to read: no space before , : ; . ! ? ) or after (, none around - and ' (stuck-out, d'ivoire)."""
    text = " ".join(words)
    text = re.sub(r" ([,:;.!?)])", r"\1", text)
    text = re.sub(r"\( ", "(", text)
    return re.sub(r" ?([-']) ?", r"\1", text)


@dataclass(frozen=True)
class CaptionedImage:
    path: Path
    captions: tuple[str, ...]  # its references, at least one
    where: str  # the file (and line) that named it, for messages
    group: str = ""  # emoji: its category (exact match is reported per category)


# ----------------------------------------------------------------------------------------- emoji
@dataclass(frozen=True)
class Emoji:
    image: str  # the file name in each artist's folder
    name: str  # lower-cased, CLDR-style for skin-tone variants
    category: str
    code_points: tuple[str, ...]  # of its sequence, upper-case hex
    composed: bool  # a skin-tone variant or a joined (ZWJ) sequence

    @property
    def parts(self) -> frozenset[str]:
        """The code points it is made of, the joiner and the presentation selector aside."""
        return frozenset(self.code_points) - {JOINER, PRESENTATION}


def toned_name(base: str, tones: str) -> str:
    """CLDR's name of a skin-tone variant: the base name, then its tones (a key like 1F3FB-1F3FC), a repeated one once."""
    said = list(dict.fromkeys(TONES[tone] for tone in tones.split("-")))
    return base + (", " if ":" in base else ": ") + ", ".join(said)


def read_emoji(data_dir: str | Path) -> list[Emoji]:
    """Every emoji of ``emoji.json``, its skin-tone variants after each base."""
    path = Path(data_dir) / "emoji.json"
    try:
        entries = json.loads(read_text_file(path, "--data-dir"))
    except json.JSONDecodeError as error:
        raise UserError(f"{path} line {error.lineno}: not JSON ({error.msg}); pass the emoji-datasource folder") from None
    emoji = []
    for number, entry in enumerate(entries, start=1):
        try:
            name, category = entry["name"].lower(), entry["category"]
            code_points = tuple(entry["unified"].upper().split("-"))
            emoji.append(Emoji(entry["image"], name, category, code_points, JOINER in code_points))
            for tones, variant in entry.get("skin_variations", {}).items():
                emoji.append(Emoji(variant["image"], toned_name(name, tones), category,
                                   tuple(variant["unified"].upper().split("-")), True))
        except (KeyError, TypeError, AttributeError):
            raise UserError(f"{path}: entry {number} lacks a name, category, unified or image field; pass "
                            "emoji-datasource's emoji.json") from None
    return emoji


def emoji_splits(data_dir: str | Path, protocol: str, seed: int) -> dict[str, list[CaptionedImage]]:
    """The train, validation and test images of ``protocol`` (see the module's docstring), drawn with ``seed``."""
    if protocol not in PROTOCOLS:
        raise UserError(f"--protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    folder = Path(data_dir)
    for artist in ARTISTS:
        if not (folder / artist / "64").is_dir():
            raise UserError(f"--data-dir: {folder} has no {artist}/64 folder of images; pass the emoji folder")
    emoji = read_emoji(folder)
    order = random.Random(seed).sample(range(len(emoji)), len(emoji))

    def images(chosen: list[Emoji], artists: tuple[str, ...]) -> list[CaptionedImage]:
        return [CaptionedImage(folder / artist / "64" / one.image, (one.name,), f"{folder / 'emoji.json'} ({one.image})",
                               one.category) for artist in artists for one in chosen]

    if protocol == "unseen-artist":
        validated = set(order[: round(VALIDATION_SHARE * len(emoji))])
        trained = [one for index, one in enumerate(emoji) if index not in validated]
        return {"train": images(trained, ("google",)),
                "validation": images([emoji[index] for index in sorted(validated)], ("google",)),
                "test": images(trained, ("twitter",))}
    composed = [index for index in order if emoji[index].composed]
    tested = composed[: round(COMPOSED_TEST_SHARE * len(composed))]
    validated = composed[len(tested) : len(tested) + round(COMPOSED_VALIDATION_SHARE * len(composed))]
    held_out = set(tested) | set(validated)
    trained = [one for index, one in enumerate(emoji) if index not in held_out]
    parts = set().union(*(one.parts for one in trained))
    words = {word for one in trained for word in caption_words(one.name)}

    # Only an emoji whose every part and word occurs in training stays held out; the others go back to training, which
    # only adds parts and words, so those kept stay valid.
    kept = {index for index in held_out
            if emoji[index].parts <= parts and set(caption_words(emoji[index].name)) <= words}
    trained += [emoji[index] for index in sorted(held_out - kept)]
    return {"train": images(trained, ARTISTS),
            "validation": images([emoji[index] for index in sorted(validated) if index in kept], ARTISTS),
            "test": images([emoji[index] for index in sorted(tested) if index in kept], ARTISTS)}


# ----------------------------------------------------------------------------------------- captions files
def read_captions(file: str | Path, images: str | Path, option: str = "--captions") -> dict[str, list[CaptionedImage]]:
    """The captioned images of a captions file (see the module's docstring) over the image folder ``images``: under
    the split its file names (Karpathy's), or all under "all"."""
    path, folder = Path(file), Path(images)
    if not folder.is_dir():
        raise UserError(f"--images: {folder} is not a folder; pass the folder that holds the images")
    text = read_text_file(path, option)
    if path.suffix == ".json":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"{path} line {error.lineno}: not JSON ({error.msg})") from None
        if isinstance(content, dict) and "annotations" in content:
            found = _coco(content, path, folder)
        elif isinstance(content, dict) and isinstance(content.get("images"), list):
            found = _karpathy(content, path, folder)
        else:
            raise UserError(f"{path}: expected COCO's captions JSON (images, annotations) or Karpathy's split file "
                            "(images with sentences)")
    else:
        found = _flickr_tokens(text, path, folder)
    for split in found.values():
        for image in split:
            if not image.path.is_file():
                raise UserError(f"{image.where}: the image {image.path} does not exist; check --images")
    return found


def _flickr_tokens(text: str, path: Path, folder: Path) -> dict[str, list[CaptionedImage]]:
    captions: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, tab, caption = line.partition("\t")
        if not tab or "#" not in name or not caption.strip():
            raise UserError(f"{path} line {number}: expected IMAGE#N, a tab, then the caption (Flickr8k.token.txt), "
                            f"got {line[:60]!r}")
        image = name.rsplit("#", 1)[0]
        captions.setdefault(image, []).append(caption.strip())
        first_line.setdefault(image, number)
    return {"all": [CaptionedImage(folder / image, tuple(texts), f"{path} line {first_line[image]}")
                    for image, texts in captions.items()]}


def _karpathy(content: dict, path: Path, folder: Path) -> dict[str, list[CaptionedImage]]:
    splits: dict[str, list[CaptionedImage]] = {}
    names = {"train": "train", "restval": "train", "val": "validation", "test": "test"}
    for number, entry in enumerate(content["images"], start=1):
        where = f"{path}: image {number}"
        if not isinstance(entry, dict) or "filename" not in entry:
            raise UserError(f"{where}: expected an object with a filename, a split and sentences")
        captions = tuple(" ".join(sentence["tokens"]) if sentence.get("tokens") else sentence.get("raw", "")
                         for sentence in entry.get("sentences", []))
        if not any(caption.strip() for caption in captions):
            raise UserError(f"{where} ({entry['filename']}) has no caption; remove it or add its sentences")
        image = folder / entry.get("filepath", "") / entry["filename"]
        split = names.get(entry.get("split", "train"), "train")
        splits.setdefault(split, []).append(CaptionedImage(image, captions, f"{where} ({entry['filename']})"))
    return splits


def _coco(content: dict, path: Path, folder: Path) -> dict[str, list[CaptionedImage]]:
    captions: dict[object, list[str]] = {}
    for number, annotation in enumerate(content["annotations"], start=1):
        if not isinstance(annotation, dict) or "image_id" not in annotation or "caption" not in annotation:
            raise UserError(f"{path}: annotation {number}: expected an object with image_id and caption")
        captions.setdefault(annotation["image_id"], []).append(annotation["caption"].strip())
    found = []
    for number, entry in enumerate(content.get("images", []), start=1):
        where = f"{path}: image {number} ({entry.get('file_name')})"
        if entry.get("id") not in captions:
            raise UserError(f"{where} has no caption in the annotations; remove it or caption it")
        found.append(CaptionedImage(folder / entry["file_name"], tuple(captions[entry["id"]]), where))
    return {"all": found}


# ----------------------------------------------------------------------------------------- pixels
def load_image(path: str | Path, size: int) -> tuple[torch.Tensor, str | None]:
    """(3, size, size) uint8 RGB pixels of an image file, resized to a square, and the mode it was converted from
    (grey, palette, with alpha: composed on white), if any. ValueError saying why the file cannot be used."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            image, mode = opened, opened.mode
            if mode != "RGB":
                rgba = image.convert("RGBA")
                image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image.alpha_composite(rgba)
                image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(size, size, 3)
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path} cannot be decoded as an image ({error})") from None
    return pixels.permute(2, 0, 1).contiguous(), None if mode == "RGB" else mode


def load_images(images: list[CaptionedImage], size: int) -> tuple[torch.Tensor, Counter]:
    """(N, 3, size, size) uint8 pixels of every image, and how many were converted from each mode; a UserError naming
    the first image that cannot be read (training cannot go on without it)."""
    pixels = torch.empty(len(images), 3, size, size, dtype=torch.uint8)
    converted: Counter = Counter()
    for row, image in enumerate(images):
        try:
            pixels[row], mode = load_image(image.path, size)
        except ValueError as error:
            raise UserError(f"{image.where}: {error}; fix or remove the image") from None
        if mode:
            converted[mode] += 1
    return pixels, converted


# ----------------------------------------------------------------------------------------- training batches
@dataclass
class CaptionExamples:
    """Images as the model reads them: pixels, each caption's ids, and each image's references (words)."""

    pixels: torch.Tensor  # (N, 3, S, S) uint8
    captions: list[tuple[int, torch.Tensor]]  # (image row, <bos> ids <eos>), one per caption
    references: list[list[list[str]]]  # per image: every caption's words
    groups: list[str]  # per image: its group ("" if none)
    paths: list[str]  # per image: its file

    def batch(self, captions: list[int]) -> Batch:
        """The batch of captions ``captions`` (indices into ``captions``): their images (1, B, 3, S, S), a sequence of
        one step, and <bos> words <eos> (T + 1, B), 0-padded."""
        chosen = [self.captions[index] for index in captions]
        pixels = self.pixels[[image for image, _ in chosen]]
        return Batch(pixels.unsqueeze(0), torch.nn.utils.rnn.pad_sequence([ids for _, ids in chosen]), starts_epoch=True)


def random_moves(count: int, generator: torch.Generator, shift: float = 0.08, zoom: float = 0.1,
                 degrees: float = 5.0) -> torch.Tensor:
    """(count, 2, 3) affine maps (output to input coordinates, as ``affine_grid`` reads them): each a move by up to
    ``shift`` of the side, a scaling by 1 ± ``zoom`` and a turn by up to ``degrees``. No flips and no colour changes:
    an emoji's name says which way it faces and its skin tone."""
    def draw(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(count, generator=generator)

    angle, scale = torch.deg2rad(draw(-degrees, degrees)), draw(1 - zoom, 1 + zoom)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack([torch.stack([cos, -sin, 2 * draw(-shift, shift)], 1),
                        torch.stack([sin, cos, 2 * draw(-shift, shift)], 1)], 1)  # coordinates run over [-1, 1]: 2x


def moved(pixels: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) uint8 images, each under its move (B, 2, 3), the uncovered border white."""
    grid = torch.nn.functional.affine_grid(moves, list(pixels.shape), align_corners=False)
    inverted = torch.nn.functional.grid_sample(255.0 - pixels.float(), grid, align_corners=False)  # 0 outside: white
    return (255.0 - inverted).round().clamp(0, 255).to(torch.uint8)


class CaptionBatches:
    """Shuffled epochs over every (image, caption) pair, the images moved a little (``random_moves``) as drawn. The
    k-th global batch's order and moves come from the seed and k alone, and each process takes its rows of both: a
    resumed run reads what it would have read, and N processes what one process would."""

    def __init__(self, examples: CaptionExamples, batch_size: int, seed: int, augmented: bool, rank: int = 0,
                 world_size: int = 1) -> None:
        self.examples, self.augmented, self.seed = examples, augmented, seed
        self.rows = ShuffledRows(len(examples.captions), batch_size, seed, rank, world_size)

    def next_batch(self) -> Batch:
        rows = self.rows
        drawn = rows.epoch * rows.batches_per_epoch + rows.position
        batch = self.examples.batch(rows.next_rows().tolist())
        if not self.augmented:
            return batch
        moves = random_moves(rows.global_batch, torch.Generator().manual_seed(self.seed * 1_000_003 + drawn))
        return replace(batch, inputs=moved(batch.inputs[0], moves[rows.rank :: rows.world_size]).unsqueeze(0))

    def epoch_progress(self) -> float:
        return self.rows.epoch_progress()

    def state_dict(self) -> dict:
        return self.rows.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.rows.load_state_dict(state)
