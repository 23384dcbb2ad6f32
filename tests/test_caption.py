"""The caption task: the emoji names and protocols, the three captions-file forms, Show, Attend and Tell's attention,
gate, penalty and stepping, the search over images, the caption metrics against hand-computed values, and the whole
task through the CLI on drawn shapes ("red circle left") whose held-out combinations it must learn to caption."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from cli_helpers import assert_one_line_error, rnnkit_here
from rnnkit.data.captions import (caption_text, caption_words, emoji_splits, load_image, moved, random_moves, read_captions,
                                  read_emoji, toned_name)
from rnnkit.errors import UserError
from rnnkit.metrics import caption_metrics, scored_words
from rnnkit.models.captioner import CaptionModelConfig, attention_of, attention_penalty, build_captioner
from rnnkit.models.search import beam_search

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 30), "blue": (30, 60, 220), "black": (20, 20, 20)}
SHAPES = ("circle", "square", "triangle")
PLACES = {"left": 6, "middle": 16, "right": 26}  # the shape's centre across a 32-pixel image
HELD_OUT = {("red", "square", "right"), ("blue", "circle", "left"), ("green", "triangle", "middle"),
            ("black", "circle", "middle")}  # every colour, shape and place of these occurs in training


# ----------------------------------------------------------------------------- drawn shapes
def draw_shape(path: Path, colour: str, shape: str, place: str, generator: random.Random, size: int = 32) -> None:
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    radius, x, y = generator.randint(4, 5), PLACES[place] + generator.randint(-1, 1), size // 2 + generator.randint(-8, 8)
    box = (x - radius, y - radius, x + radius, y + radius)
    if shape == "circle":
        draw.ellipse(box, fill=COLOURS[colour])
    elif shape == "square":
        draw.rectangle(box, fill=COLOURS[colour])
    else:
        draw.polygon([(x, y - radius), (x - radius, y + radius), (x + radius, y + radius)], fill=COLOURS[colour])
    image.save(path)


def write_shapes(folder: Path, per_combination: int, seed: int = 0) -> Path:
    """images/*.png of one shape each, captioned "COLOUR SHAPE PLACE" in Flickr8k's token form: train.token.txt
    (shuffled) and test.token.txt (the HELD_OUT combinations)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    generator = random.Random(seed)
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for colour in COLOURS:
        for shape in SHAPES:
            for place in PLACES:
                for _ in range(per_combination):
                    name = f"{sum(map(len, lines.values())):04d}.png"
                    draw_shape(folder / "images" / name, colour, shape, place, generator)
                    split = "test" if (colour, shape, place) in HELD_OUT else "train"
                    lines[split].append(f"{name}#0\t{colour} {shape} {place}")
    generator.shuffle(lines["train"])
    for split, found in lines.items():
        (folder / f"{split}.token.txt").write_text("\n".join(found) + "\n")
    return folder


def shape_options(folder: Path) -> list:
    return ["--images", folder / "images", "--captions", folder / "train.token.txt", "--test-captions",
            folder / "test.token.txt", "--image-size", "32"]


# ----------------------------------------------------------------------------- emoji
def write_emoji(folder: Path) -> Path:
    """A small emoji-datasource folder: five bases (one with skin tones, one joined, a flag), images by both artists."""
    entries = [
        {"name": "THUMBS UP SIGN", "unified": "1F44D", "image": "1f44d.png", "category": "People & Body",
         "skin_variations": {"1F3FD": {"unified": "1F44D-1F3FD", "image": "1f44d-1f3fd.png"},
                             "1F3FF": {"unified": "1F44D-1F3FF", "image": "1f44d-1f3ff.png"}}},
        {"name": "WOMAN", "unified": "1F469", "image": "1f469.png", "category": "People & Body",
         "skin_variations": {"1F3FD": {"unified": "1F469-1F3FD", "image": "1f469-1f3fd.png"}}},
        {"name": "PERSONAL COMPUTER", "unified": "1F4BB", "image": "1f4bb.png", "category": "Objects"},
        {"name": "WOMAN TECHNOLOGIST", "unified": "1F469-200D-1F4BB", "image": "1f469-200d-1f4bb.png",
         "category": "People & Body",
         "skin_variations": {"1F3FD": {"unified": "1F469-1F3FD-200D-1F4BB", "image": "1f469-1f3fd-200d-1f4bb.png"}}},
        {"name": "COUPLE WITH HEART: MAN, MAN", "unified": "1F468-200D-2764-FE0F-200D-1F468", "image": "c.png",
         "category": "People & Body",
         "skin_variations": {"1F3FB-1F3FB": {"unified": "1F468-1F3FB-200D-2764-FE0F-200D-1F468-1F3FB", "image": "c1.png"},
                             "1F3FB-1F3FC": {"unified": "1F468-1F3FB-200D-2764-FE0F-200D-1F468-1F3FC", "image": "c2.png"}}},
        {"name": "Egypt Flag", "unified": "1F1EA-1F1EC", "image": "1f1ea-1f1ec.png", "category": "Flags"},
    ]
    (folder / "emoji.json").parent.mkdir(parents=True, exist_ok=True)
    (folder / "emoji.json").write_text(json.dumps(entries))
    images = [entry["image"] for entry in entries] + [variant["image"] for entry in entries
                                                       for variant in entry.get("skin_variations", {}).values()]
    for artist, mode in (("google", "RGBA"), ("twitter", "P")):
        (folder / artist / "64").mkdir(parents=True, exist_ok=True)
        for number, name in enumerate(images):
            Image.new("RGB", (64, 64), (number * 20, 100, 200)).convert(mode).save(folder / artist / "64" / name)
    return folder


def test_skin_tone_variants_are_named_as_cldr_names_them():
    assert toned_name("thumbs up sign", "1F3FD") == "thumbs up sign: medium skin tone"
    assert toned_name("couple with heart: man, man", "1F3FB-1F3FC") == \
        "couple with heart: man, man, light skin tone, medium-light skin tone"
    assert toned_name("people holding hands", "1F3FB-1F3FB") == "people holding hands: light skin tone"  # said once


def test_the_tones_agree_with_the_emoji_packages_cldr_names(tmp_path):
    emoji_package = pytest.importorskip("emoji", reason="the emoji package (CLDR names) is in rnnkit's dev extra")
    for one in read_emoji(write_emoji(tmp_path)):
        character = "".join(chr(int(point, 16)) for point in one.code_points)
        if not any(tone in one.name for tone in ("light skin", "medium skin", "dark skin")):
            continue
        cldr = emoji_package.EMOJI_DATA[character]["en"].strip(":").replace("_", " ").lower()
        ours = one.name.split(": ", 1)[1].split(", ")
        ours = [part for part in ours if part.endswith("skin tone")]
        assert cldr.endswith(" ".join(ours).replace(", ", " ")), (one.name, cldr)


def test_captions_are_written_back_as_text_to_read():
    for name in ("face with stuck-out tongue", "couple with heart: man, man, light skin tone", "keycap: *",
                 "côte d'ivoire flag", "a dog (brown) runs."):
        assert caption_text(caption_words(name)) == name.lower()


def test_emoji_are_read_with_their_variants_and_categories(tmp_path):
    emoji = {one.image: one for one in read_emoji(write_emoji(tmp_path))}
    assert len(emoji) == 12
    assert emoji["1f44d-1f3ff.png"].name == "thumbs up sign: dark skin tone"
    assert emoji["1f1ea-1f1ec.png"].name == "egypt flag" and emoji["1f1ea-1f1ec.png"].category == "Flags"
    assert emoji["1f469-200d-1f4bb.png"].composed and not emoji["1f469.png"].composed
    assert emoji["1f469-1f3fd-200d-1f4bb.png"].parts == {"1F469", "1F3FD", "1F4BB"}  # the joiner is no part


def test_unseen_artist_tests_on_twitters_images_of_the_emoji_trained_on(tmp_path):
    splits = emoji_splits(write_emoji(tmp_path), "unseen-artist", seed=0)
    assert all("/google/" in str(image.path) for image in splits["train"] + splits["validation"])
    assert all("/twitter/" in str(image.path) for image in splits["test"])
    assert [image.path.name for image in splits["test"]] == [image.path.name for image in splits["train"]]
    assert not {image.path.name for image in splits["validation"]} & {image.path.name for image in splits["train"]}
    assert len(splits["validation"]) == 1  # a tenth of 12, rounded


def test_unseen_composition_holds_out_only_variants_whose_parts_and_words_are_trained_on(tmp_path, monkeypatch):
    import rnnkit.data.captions as captions

    monkeypatch.setattr(captions, "COMPOSED_TEST_SHARE", 0.5)  # hold out half of the 8 composed emoji
    folder = write_emoji(tmp_path)
    emoji = {one.image: one for one in read_emoji(folder)}
    held_out = set()
    for seed in range(10):
        splits = emoji_splits(folder, "unseen-composition", seed)
        trained = [emoji[image.path.name] for image in splits["train"]]
        parts = set().union(*(one.parts for one in trained))
        words = {word for one in trained for word in caption_words(one.name)}
        tested = [emoji[image.path.name] for image in splits["test"]]
        assert all(one.composed for one in tested)
        assert all(one.parts <= parts and set(caption_words(one.name)) <= words for one in tested)
        assert not {one.image for one in tested} & {one.image for one in trained}
        assert [image.path.parent.parent.name for image in splits["test"]] == \
            ["google"] * (len(tested) // 2) + ["twitter"] * (len(tested) // 2)
        held_out |= {one.image for one in tested}
    # never the only emoji with a dark (1F3FF) or a medium-light (1F3FC) tone: those parts would be unseen
    assert held_out == {"1f44d-1f3fd.png", "1f469-1f3fd.png", "1f469-1f3fd-200d-1f4bb.png", "1f469-200d-1f4bb.png",
                        "c.png", "c1.png"}


def test_images_that_are_not_rgb_are_composed_on_white_and_said(tmp_path):
    Image.new("LA", (8, 8), (0, 0)).save(tmp_path / "clear.png")  # fully transparent black
    Image.new("L", (8, 8), 40).save(tmp_path / "grey.png")
    pixels, mode = load_image(tmp_path / "clear.png", 4)
    assert mode == "LA" and pixels.shape == (3, 4, 4) and bool((pixels == 255).all())
    pixels, mode = load_image(tmp_path / "grey.png", 8)
    assert mode == "L" and bool((pixels == 40).all())
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="cannot be decoded"):
        load_image(tmp_path / "broken.png", 8)


def test_moves_keep_an_image_that_does_not_move_and_fill_the_border_white():
    pixels = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    still = torch.tensor([[[1.0, 0, 0], [0, 1, 0]]] * 2)
    assert torch.equal(moved(pixels, still), pixels)
    shifted = moved(pixels, torch.tensor([[[1.0, 0, 0.5], [0, 1, 0]]] * 2))  # a quarter of the side to the left
    assert bool((shifted[..., -2:] == 255).all()) and torch.equal(shifted[..., :6], pixels[..., 2:])
    first = random_moves(4, torch.Generator().manual_seed(3))
    assert torch.equal(first, random_moves(4, torch.Generator().manual_seed(3)))


# ----------------------------------------------------------------------------- captions files
def small_images(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (8, 8), "white").save(folder / name)
    return folder


def test_the_three_captions_file_forms(tmp_path):
    images = small_images(tmp_path / "images", ["a.jpg", "b.jpg"])
    flickr = tmp_path / "Flickr8k.token.txt"
    flickr.write_text("a.jpg#0\tA dog runs .\na.jpg#1\tA brown dog .\nb.jpg#0\tTwo cats .\n")
    found = read_captions(flickr, images)["all"]
    assert [(image.path.name, image.captions) for image in found] == [("a.jpg", ("A dog runs .", "A brown dog .")),
                                                                      ("b.jpg", ("Two cats .",))]
    karpathy = tmp_path / "dataset_flickr8k.json"
    karpathy.write_text(json.dumps({"images": [
        {"filename": "a.jpg", "split": "restval", "sentences": [{"tokens": ["a", "dog"], "raw": "A dog."}]},
        {"filename": "b.jpg", "split": "test", "sentences": [{"tokens": ["two", "cats"]}, {"raw": "Cats."}]}]}))
    splits = read_captions(karpathy, images)
    assert [image.captions for image in splits["train"]] == [("a dog",)]  # restval trains, as in Karpathy's code
    assert [image.captions for image in splits["test"]] == [("two cats", "Cats.")]
    coco = tmp_path / "captions_val2014.json"
    coco.write_text(json.dumps({"images": [{"id": 7, "file_name": "b.jpg"}, {"id": 3, "file_name": "a.jpg"}],
                                "annotations": [{"image_id": 3, "caption": "A dog. "}, {"image_id": 7, "caption": "Cats"},
                                                {"image_id": 3, "caption": "Dog"}]}))
    assert [(image.path.name, image.captions) for image in read_captions(coco, images)["all"]] == [
        ("b.jpg", ("Cats",)), ("a.jpg", ("A dog.", "Dog"))]


def test_bad_captions_files_name_the_file_and_line(tmp_path):
    images = small_images(tmp_path / "images", ["a.jpg"])
    cases = {"missing.txt": ("a.jpg#0\tA dog .\nz.jpg#0\tNo such image .\n", "missing.txt line 2", "does not exist"),
             "tabless.txt": ("a.jpg#0\tA dog .\na.jpg#1 A dog\n", "tabless.txt line 2", "expected IMAGE#N"),
             "uncaptioned.json": (json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                                              "annotations": [{"image_id": 2, "caption": "x"}]}), "image 1", "no caption")}
    for name, (content, where, what) in cases.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(UserError, match=what) as error:
            read_captions(tmp_path / name, images)
        assert where in str(error.value)


# ----------------------------------------------------------------------------- the model
def tiny_model(decoder: str = "attention", cell: str = "lstm", **options) -> torch.nn.Module:
    config = CaptionModelConfig(cell=cell, hidden_size=16, embedding_size=8, encoder_widths=(8, 8, 16),
                                decoder=decoder, heads=2, feedforward_size=16, num_layers=options.pop("num_layers", 1),
                                **options)
    torch.manual_seed(0)
    return build_captioner(12, config, 16).eval()


def images(count: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (1, count, 3, 16, 16), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_attention_weighs_the_regions_to_one_and_the_gate_scales_the_context():
    model = tiny_model()
    _, _, state = model(images(3))
    assert state.memory.shape == (4, 3, 16)  # 16x16 pixels -> 2x2 regions of 16 features
    _, state = model.step(torch.tensor([2, 2, 2]), state)
    assert torch.allclose(state.attention.sum(dim=1), torch.ones(3)) and bool((state.attention > 0).all())
    gated, ungated = tiny_model(), tiny_model(gate=False)
    ungated.load_state_dict({k: v for k, v in gated.state_dict().items() if not k.startswith("gate.")})
    with torch.no_grad():  # beta = sigmoid(big) = 1: the gate lets the whole context through
        gated.gate.weight.zero_()
        gated.gate.bias.fill_(50.0)
    _, _, first = gated(images(2))
    words = torch.tensor([[2, 2], [5, 6]])
    assert torch.allclose(gated(words, first)[0], ungated(words, first)[0], atol=1e-6)


def test_the_encoders_regions_are_its_feature_map_in_row_major_order_whatever_the_layout():
    encoder = tiny_model().encoder.eval()
    pixels = images(3)[0]
    with torch.no_grad():  # the network on the standard layout, by hand
        grid = encoder.network((pixels.float() / 255.0 - encoder.mean) / encoder.std)  # (B, D, h, w)
        regions = encoder(pixels)
    assert grid.is_contiguous() and regions.shape == (4, 3, 16)
    assert torch.allclose(regions, torch.stack([grid[:, :, 0, 0], grid[:, :, 0, 1], grid[:, :, 1, 0], grid[:, :, 1, 1]]),
                          atol=1e-5)
    assert all(weight.is_contiguous() for weight in encoder.state_dict().values())  # what safetensors can save


def test_the_doubly_stochastic_penalty_is_its_formula_over_the_real_words():
    alphas = torch.tensor([[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]],
                           [[0.0, 0.5, 0.5], [0.0, 0.0, 1.0]],
                           [[0.0, 1.0, 0.0], [0.3, 0.3, 0.4]]])  # (T 3, B 2, L 3)
    real = torch.tensor([[True, True], [True, True], [True, False]])  # image 2's caption is a word shorter
    # image 1 looked at the regions 0.5, 2.0, 0.5 times; image 2 at 1, 0, 1 (its padded step is not counted)
    expected = ((0.5 ** 2 + 1.0 ** 2 + 0.5 ** 2) + (0 + 1.0 + 0)) / 6
    assert math.isclose(float(attention_penalty(alphas, real)), expected, rel_tol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru", "indrnn"])
def test_teacher_forcing_equals_stepping_word_by_word(cell):
    model = tiny_model(cell=cell, num_layers=2)
    targets = torch.tensor([[2, 2, 2], [5, 6, 7], [8, 3, 9], [3, 0, 3]])  # <bos> words <eos>, the middle one padded
    logits, _, _ = model(images(3), targets=targets)
    _, _, state = model(images(3))
    stepped = []
    for word in targets[:-1]:
        step_logits, _, state = model(word.unsqueeze(0), state)
        stepped.append(step_logits[0])
    assert torch.allclose(logits, torch.stack(stepped), atol=1e-6)


def test_the_penalty_joins_the_loss_in_training_only():
    model = tiny_model(attention_penalty=2.0)
    targets = torch.tensor([[2, 2], [5, 6], [3, 3]])
    with torch.no_grad():
        evaluated = float(model(images(2), targets=targets)[1])
    model.train()
    torch.manual_seed(1)
    trained = model(images(2), targets=targets)[1]
    plain = tiny_model(attention_penalty=0.0).train()
    torch.manual_seed(1)
    assert float(trained) > float(plain(images(2), targets=targets)[1]) and evaluated < float(trained)


@pytest.mark.parametrize("decoder", ["attention", "transformer"])
def test_captions_searched_together_equal_each_image_alone(decoder):
    model = tiny_model(decoder)
    options = dict(beam_size=3, max_lengths=torch.tensor([5, 5, 5]), begin=2, end=3, never=(0, 2), n_best=2,
                   attention=attention_of)
    together = beam_search(model, images(3), **options)
    alone = [beam_search(model, images(3)[:, row : row + 1], **{**options, "max_lengths": torch.tensor([5])})[0]
             for row in range(3)]
    for found, single in zip(together, alone):
        assert [hypothesis.tokens for hypothesis in found] == [hypothesis.tokens for hypothesis in single]
        assert all(math.isclose(a.score, b.score, rel_tol=1e-5) for a, b in zip(found, single))
    if decoder == "attention":  # a distribution over the regions per word written (<eos> too, unless cut at 5)
        for found in together:
            assert found[0].attention.shape == (min(len(found[0].tokens) + 1, 5), 4)
            assert torch.allclose(found[0].attention.sum(dim=1), torch.ones(found[0].attention.shape[0]))


def test_a_beam_of_one_is_greedy_decoding():
    model = tiny_model()
    found = beam_search(model, images(2), beam_size=1, max_lengths=torch.tensor([4, 4]), begin=2, end=3, never=(0, 2))
    _, _, state = model(images(2))
    tokens, written = torch.tensor([2, 2]), [[], []]
    for _ in range(4):
        logits, _, state = model(tokens.unsqueeze(0), state)
        logits[0][:, [0, 2]] = float("-inf")
        tokens = logits[0].argmax(dim=-1)
        for row in range(2):
            written[row].append(int(tokens[row]))
    expected = [words[: words.index(3)] if 3 in words else words for words in written]
    assert [hypotheses[0].tokens for hypotheses in found] == expected


# ----------------------------------------------------------------------------- metrics
def test_caption_metrics_against_hand_computed_values():
    # BLEU-1 of "a red circle" against "a red square left": 2 of 3 words match, brevity penalty exp(1 - 4/3)
    one = caption_metrics([["a", "red", "circle"]], [[["a", "red", "square", "left"]]])
    assert math.isclose(one["bleu1"], 100 * 2 / 3 * math.exp(1 - 4 / 3), rel_tol=1e-6)
    # CIDEr-D: two images, df of each n-gram 1 of 2 documents. Image 2 is perfect: 10 x (1 + 1 + 0 + 0) / 4 = 5.
    # Image 1 shares one of two unigrams, no bigram: unigram cosine 1/2 -> 10 x (0.5 + 0) / 4 = 1.25. Mean 3.125.
    both = caption_metrics([["red", "square"], ["blue", "square"]], [[["red", "circle"]], [["blue", "square"]]])
    assert math.isclose(both["cider"], 312.5, rel_tol=1e-6)
    assert both["exact_match"] == 50.0
    # punctuation is not scored (the COCO tokenizer's list): "flag: egypt" matches "flag egypt" exactly
    assert scored_words(caption_words("Thumbs up: medium skin tone.")) == ["thumbs", "up", "medium", "skin", "tone"]
    assert caption_metrics([["flag", ":", "egypt"]], [[["flag", "egypt"], ["egypt"]]])["exact_match"] == 100.0


# ----------------------------------------------------------------------------- the task through the CLI
@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    folder = write_shapes(tmp_path_factory.mktemp("caption"), per_combination=12)
    run = folder / "run"
    result = rnnkit_here("train", "caption", *shape_options(folder), "--hidden-size", "64", "--embedding-size", "32",
                    "--encoder-widths", "16", "32", "64", "--batch-size", "32", "--lr", "0.003", "--dropout", "0",
                    "--max-minutes", "0", "--max-steps", "400", "--eval-every", "100", "--out", run,
                    threads=1)
    assert result.returncode == 0, result.stderr
    return folder, run


@pytest.mark.slow
def test_it_learns_to_caption_combinations_it_never_saw(shapes_run):
    folder, run = shapes_run
    test = json.loads((run / "summary.json").read_text())["test"]
    assert test["beam"]["exact_match"] >= 80.0, test
    assert test["nearest_neighbour"]["exact_match"] == 0.0  # a held-out combination is no training caption
    records = [json.loads(line) for line in (run / "test_captions.jsonl").read_text().splitlines()]
    assert len(records) == 4 * 12 and {tuple(record["references"]) for record in records} == {
        (" ".join(combination),) for combination in HELD_OUT}


@pytest.mark.slow
def test_predict_captions_images_in_both_formats_and_draws_the_attention(shapes_run, tmp_path):
    folder, run = shapes_run
    test_images = [line.split("#")[0] for line in (folder / "test.token.txt").read_text().splitlines()]
    first = folder / "images" / test_images[0]
    Image.open(first).convert("P").save(tmp_path / "palette.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    text = rnnkit_here("predict", "--checkpoint", run, first, tmp_path / "palette.png", "--n-best", "2",
                  "--show-attention", tmp_path / "where.png")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    expected = next(line.split("\t")[1] for line in (folder / "test.token.txt").read_text().splitlines()
                    if line.startswith(test_images[0]))
    assert lines[0] == f"{first}\t{expected}" and lines[1].startswith("  2. ")
    assert "composed on white" in lines[2]
    for number in (1, 2):
        assert (tmp_path / f"where-{number}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    jsonl = rnnkit_here("predict", "--checkpoint", run, first, tmp_path / "broken.png", "--format", "jsonl")
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert records[0]["caption"] == expected and set(records[0]) == {"image", "caption", "score"}
    assert "cannot be decoded" in records[1]["error"]  # answered in its place; the others are still captioned
    assert_one_line_error(jsonl, "1 of 2 inputs could not be read", "broken.png")
    evaluated = rnnkit_here("evaluate", "--checkpoint", run, "--beam-size", "1")
    assert evaluated.returncode == 0 and "exact match" in evaluated.stdout


def test_training_stops_on_an_image_it_cannot_read(tmp_path):
    images = small_images(tmp_path / "images", [f"{number}.png" for number in range(12)])
    (images / "3.png").write_bytes(b"garbage")
    (tmp_path / "captions.txt").write_text("".join(f"{number}.png#0\ta picture\n" for number in range(12)))
    result = rnnkit_here("train", "caption", "--images", images, "--captions", tmp_path / "captions.txt",
                         "--out", tmp_path / "run")
    assert_one_line_error(result, "captions.txt line 4", "3.png", "cannot be decoded")
    (tmp_path / "captions.txt").write_text("0.png#0\ta picture\n9.png#0\t\n")
    result = rnnkit_here("train", "caption", "--images", images, "--captions", tmp_path / "captions.txt",
                         "--out", tmp_path / "run")
    assert_one_line_error(result, "captions.txt line 2", "expected IMAGE#N")
