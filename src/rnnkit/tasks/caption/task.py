"""``caption``: image captioning (one-to-many): a convolutional encoder and an attentive recurrent decoder.

Data: the emoji images in ``--data-dir`` under ``--protocol unseen-artist|unseen-composition``
(``rnnkit.data.captions``), or your images (``--images DIR``) with captions in Flickr8k's,
Karpathy's or COCO's form (``--captions FILE``; ``--valid-captions``, default the last tenth,
and ``--test-captions``; Karpathy's file says each image's split itself). Images are read as
``--image-size`` squares (grey, palette and transparent images composed on white, said once),
augmented while training (small shifts, zooms and turns; ``--no-augment``).

Vocabulary: the training captions' words seen ``--min-count`` times, after ``<pad> <unk> <bos>
<eos>``. Model (``rnnkit.models.captioner``): Show, Attend and Tell (``--decoder attention``) or
the same encoder with a Transformer decoder (``--decoder transformer``), trained with teacher
forcing on every (image, caption) pair.

Validation (what ``--keep-best`` keeps) is the CIDEr-D of greedy captions. Test metrics
(``rnnkit.metrics.caption_metrics``): BLEU-1..4, CIDEr-D and exact match of greedy and beam
captions (``decoding`` options), exact match per group (the emoji's categories), the
references' perplexity, and the nearest-neighbour baseline: each test image gets the caption
of the training image whose pooled features (the trained encoder's mean annotation) are the
most similar by cosine. ``test_captions.jsonl`` in the run folder holds every test image's
captions and references.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from rnnkit.data.batch import Batch
from rnnkit.data.captions import (EMOJI, PROTOCOLS, CaptionBatches, CaptionedImage, CaptionExamples, caption_text,
                                  caption_words, emoji_splits, load_image, load_images, read_captions)
from rnnkit.data.splits import hold_out_last_tenth
from rnnkit.data.vocabulary import BEGIN, END, PADDING, TokenVocabulary
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent
from rnnkit.metrics import caption_metrics, exact_matches, perplexity
from rnnkit.models.captioner import CaptionModelConfig, attention_of, build_captioner, image_encoder_of
from rnnkit.models.search import DecodingConfig, Hypothesis, beam_search
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.caption.commands import CAPTION_EVALUATE, CAPTION_PREDICT, CaptionOptions
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.files import atomic_write_text
from rnnkit.train.session import Monitor, Session

EVALUATION_IMAGES = 64  # images per decoding batch (times the beam size in rows)


@dataclass
class CaptionData:
    data_dir: str = EMOJI
    """The emoji folder: emoji.json, google/64/*.png, twitter/64/*.png."""
    protocol: str = "unseen-artist"
    """unseen-artist (train on Google's images, test on Twitter's) or unseen-composition (hold out skin-tone and
    joined variants whose parts are seen)."""
    split_seed: int = 1337
    """The seed that draws the emoji held out (the same split whatever --seed trains with)."""
    images: str | None = None
    """Your own images instead: the folder the captions files name them in."""
    captions: str | None = None
    """Your own captions: Flickr8k.token.txt's form, Karpathy's dataset_*.json or COCO's captions JSON."""
    valid_captions: str | None = None
    """Your own validation captions (default: the last tenth of --captions; Karpathy's file has its own split)."""
    test_captions: str | None = None
    """Your own test captions (optional)."""
    image_size: int = 64
    """Images are read as squares of this many pixels (224 for photos, with --encoder resnet18)."""
    min_count: int = 1
    """Keep the training captions' words seen at least this many times; the others read as <unk>."""
    max_caption_words: int = 30
    """Training captions are cut after this many words (the metrics read them whole)."""
    augment: bool = True
    """Shift, zoom and turn each training image a little, anew every time it is drawn."""

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise UserError(f"--protocol: expected one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        for name in ("image_size", "min_count", "max_caption_words"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(self, name)}")
        if (self.images is None) != (self.captions is None):
            raise UserError("--images, --captions: give both (the image folder and its captions file), or neither")
        if (self.valid_captions or self.test_captions) and not self.captions:
            raise UserError("--valid-captions/--test-captions: give your training captions with --captions too")


@dataclass
class CaptionConfig(RunConfig):
    model: CaptionModelConfig = field(default_factory=lambda: CaptionModelConfig(
        cell="lstm", hidden_size=512, num_layers=1, embedding_size=256, dropout=0.3))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=64, optimizer="adam", lr=1e-3, schedule="cosine", epochs=0, max_minutes=30.0, eval_every=200,
        clip_grad_norm=5.0, keep_best=True, precision="fp32"))
    dataset: CaptionData = field(default_factory=CaptionData)
    decoding: DecodingConfig = field(default_factory=lambda: DecodingConfig(
        beam_size=3, length_penalty="gnmt", alpha=0.6, max_length_ratio=0.0, max_length_extra=30))

    GROUPS = ("model", "train", "dataset", "decoding")


def read_image_splits(data: CaptionData) -> dict[str, list[CaptionedImage]]:
    """The train, validation and (where there is one) test images of the emoji protocol or of your own files."""
    if not data.captions:
        if not Path(data.data_dir).is_dir():
            raise UserError(f"--data-dir: {data.data_dir} is not a folder; pass the emoji folder, or your own "
                            "images with --images DIR --captions FILE")
        return emoji_splits(data.data_dir, data.protocol, data.split_seed)
    found = read_captions(data.captions, data.images)
    if "all" not in found:  # Karpathy's file: its own splits
        return found
    splits = {"train": found["all"]}
    if data.valid_captions:
        splits["validation"] = _one_split(read_captions(data.valid_captions, data.images, "--valid-captions"))
    else:
        train, validation = hold_out_last_tenth(splits["train"], f"--captions: {data.captions} captions "
                                                f"{len(splits['train'])} image(s), too few to hold some out for "
                                                "validation; add images or pass --valid-captions")
        splits = {"train": train, "validation": validation}
    if data.test_captions:
        splits["test"] = _one_split(read_captions(data.test_captions, data.images, "--test-captions"))
    return splits


def _one_split(found: dict[str, list[CaptionedImage]]) -> list[CaptionedImage]:
    return [image for images in found.values() for image in images]


def caption_vocabulary(images: list[CaptionedImage], min_count: int) -> TokenVocabulary:
    counts = Counter(word for image in images for caption in image.captions for word in caption_words(caption))
    return TokenVocabulary.from_counts(counts, min_count, specials=(BEGIN, END))


class CaptionSession(Session):
    monitor = Monitor("cider", "max")
    unit = "caption"

    def __init__(self, config: CaptionConfig, vocabulary: TokenVocabulary, device: torch.device) -> None:
        self.config, self.vocabulary, self.device = config, vocabulary, device
        self.model = build_captioner(len(vocabulary), config.model, config.dataset.image_size).to(device)
        self.batches = None
        self.splits: dict[str, CaptionExamples] = {}  # train (for the nearest-neighbour baseline), validation, test
        self.test_records: list[dict] = []  # every test image's captions, once test_summary has found them

    def task_state(self) -> dict:
        return {"vocabulary": self.vocabulary.to_state()}

    def examples(self, images: list[CaptionedImage], label: str) -> CaptionExamples:
        """Images as the model reads them; training captions cut at --max-caption-words."""
        data = self.config.dataset
        pixels, converted = load_images(images, data.image_size)
        if converted:
            modes = ", ".join(f"{mode} {count:,}" for mode, count in converted.most_common())
            print(f"caption: {label}: {sum(converted.values()):,} of {len(images):,} images were not RGB ({modes}); "
                  "read composed on white", file=sys.stderr)
        index = self.vocabulary.index
        captions, references = [], []
        for row, image in enumerate(images):
            words = [caption_words(caption) for caption in image.captions]
            references.append(words)
            captions += [(row, torch.tensor([index[BEGIN], *self.vocabulary.encode(one[: data.max_caption_words]),
                                             index[END]])) for one in words]
        return CaptionExamples(pixels, captions, references, [image.group for image in images],
                               [str(image.path) for image in images])

    def loss_terms(self, batch: Batch) -> int:
        return int((batch.targets[1:] != self.vocabulary.index[PADDING]).sum())  # cross-entropy per caption word

    # ----------------------------------------------------------------- search
    def captions(self, model, pixels: torch.Tensor, decoding: DecodingConfig, n_best: int = 1) -> list[list[Hypothesis]]:
        """The n-best captions of every image (N, 3, S, S), in order: from <bos> to <eos>, never <pad> or <bos>."""
        index = self.vocabulary.index
        found = []
        for start in range(0, len(pixels), EVALUATION_IMAGES):
            chunk = pixels[start : start + EVALUATION_IMAGES].to(self.device)
            limits = decoding.max_lengths(torch.zeros(len(chunk), dtype=torch.long))  # an image has no length
            found += beam_search(model, chunk.unsqueeze(0), beam_size=decoding.beam_size,
                                 max_lengths=limits.to(self.device), begin=index[BEGIN], end=index[END],
                                 never=(index[PADDING], index[BEGIN]),
                                 penalty=decoding.penalised, n_best=n_best, attention=attention_of)
        return found

    def nearest_captions(self, model, pixels: torch.Tensor) -> list[list[str]]:
        """The baseline: each image gets the first caption of the training image whose pooled features are the most
        similar by cosine."""
        train = self.splits["train"]
        encoder = image_encoder_of(model)

        def features(images: torch.Tensor) -> torch.Tensor:
            pooled = [encoder.pooled(images[start : start + EVALUATION_IMAGES].to(self.device))
                      for start in range(0, len(images), EVALUATION_IMAGES)]
            return torch.nn.functional.normalize(torch.cat(pooled), dim=1)

        nearest = (features(pixels) @ features(train.pixels).t()).argmax(dim=1)
        return [train.references[int(row)][0] for row in nearest]

    # ----------------------------------------------------------------- evaluation
    def perplexity(self, model, examples: CaptionExamples) -> float:
        """exp(mean cross-entropy per reference word, <eos> included), every reference of every image."""
        total, words = 0.0, 0
        for start in range(0, len(examples.captions), EVALUATION_IMAGES):
            batch = examples.batch(list(range(start, min(start + EVALUATION_IMAGES, len(examples.captions)))))
            batch = batch.to(self.device)
            _, loss, _ = model(batch.inputs, targets=batch.targets)
            count = int((batch.targets[1:] != 0).sum())
            total, words = total + float(loss) * count, words + count
        return perplexity(total / words)

    def written(self, hypotheses: list[list[Hypothesis]]) -> list[list[str]]:
        return [self.vocabulary.decode(found[0].tokens) for found in hypotheses]

    def evaluate(self, model, examples: CaptionExamples | None = None) -> dict:
        """Greedy captions' metrics and the references' perplexity on ``examples`` (default: the validation split)."""
        examples = examples or self.splits["validation"]
        greedy = self.written(self.captions(model, examples.pixels, replace(self.config.decoding, beam_size=1)))
        return {**caption_metrics(greedy, examples.references), "perplexity": self.perplexity(model, examples)}

    def final_metrics(self, examples: CaptionExamples, decoding: DecodingConfig) -> dict:
        """Greedy, beam (``decoding``) and nearest-neighbour captions' metrics, beam's exact match per group, and the
        references' perplexity; ``test_records`` keeps every image's captions."""
        self.model.eval()
        with torch.no_grad():
            found = {"greedy": self.written(self.captions(self.model, examples.pixels, replace(decoding, beam_size=1))),
                     "beam": self.written(self.captions(self.model, examples.pixels, decoding))}
            if "train" in self.splits:
                found["nearest_neighbour"] = self.nearest_captions(self.model, examples.pixels)
            metrics = {name: caption_metrics(written, examples.references) for name, written in found.items()}
            metrics["perplexity"] = self.perplexity(self.model, examples)
        metrics["decoding"] = f"beam {decoding.beam_size}"
        exact = exact_matches(found["beam"], examples.references)
        by_group: dict[str, list[bool]] = {}
        for group, matched in zip(examples.groups, exact):
            if group:
                by_group.setdefault(group, []).append(matched)
        if by_group:
            metrics["exact_match_by_group"] = {
                group: {"images": len(matched), "exact_match": 100 * sum(matched) / len(matched)}
                for group, matched in sorted(by_group.items())}
        self.test_records = [{"image": path, "references": [caption_text(words) for words in references], "group": group,
                              **{name: caption_text(written[row]) for name, written in found.items()}}
                             for row, (path, references, group)
                             in enumerate(zip(examples.paths, examples.references, examples.groups))]
        return metrics

    def test_summary(self) -> dict:
        test = self.splits.get("test")
        return {} if test is None else {"test": self.final_metrics(test, self.config.decoding)}

    def write_files(self, folder: Path) -> list[Path]:
        if not self.test_records:
            return []
        path = folder / "test_captions.jsonl"
        atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in self.test_records))
        return [path]

    def report(self, metrics: dict, label: str = "validation") -> str:
        def scores(found: dict) -> str:
            return (f"BLEU-1/4 {found['bleu1']:.1f}/{found['bleu4']:.1f}, CIDEr-D {found['cider']:.1f}, "
                    f"exact match {found['exact_match']:.1f}%")

        if "beam" not in metrics:
            return f"{label} {scores(metrics)}, perplexity {metrics['perplexity']:.2f}"
        line = f"{label} perplexity {metrics['perplexity']:.2f}; greedy: {scores(metrics['greedy'])}; " \
               f"{metrics['decoding']}: {scores(metrics['beam'])}"
        if "nearest_neighbour" in metrics:
            line += f"; nearest neighbour: {scores(metrics['nearest_neighbour'])}"
        return line

    def decoding_with(self, beam_size: int) -> DecodingConfig:
        """The run's decoding options with another beam size (0: the run's)."""
        if beam_size < 0:
            raise UserError(f"--beam-size: expected a positive number of hypotheses (0: the run's), got {beam_size}")
        return replace(self.config.decoding, beam_size=beam_size or self.config.decoding.beam_size)

    def labelled_images(self, captions: str | None, images: str | None) -> CaptionExamples:
        """``rnnkit evaluate``'s data: a captions file over an image folder, or the run's test split."""
        if (captions is None) != (images is None):
            raise UserError("--captions, --images: give both (a captions file and the folder of its images)")
        if captions:
            return self.examples(_one_split(read_captions(captions, images)), "--captions")
        splits = read_image_splits(self.config.dataset)
        if "test" not in splits:
            raise UserError("the run was trained without a test split: pass --captions FILE --images DIR")
        self.splits["train"] = self.examples(splits["train"], "train")
        return self.examples(splits["test"], "test")

    # ----------------------------------------------------------------- rnnkit predict (rnnkit.tasks.predict.Predictor)
    def parse_input(self, text: str) -> tuple[str, torch.Tensor, str | None]:
        path = text.strip()
        if not path:
            raise ValueError("the line is empty; give the path of an image")
        pixels, mode = load_image(path, self.config.dataset.image_size)
        return path, pixels, mode

    def input_length(self, parsed) -> int:
        return 1

    def predict(self, inputs: list[tuple[str, torch.Tensor, str | None]], options: CaptionOptions) -> list[dict]:
        """Captions; ``--n-best`` adds the best hypotheses, ``--show-attention`` each caption's attention weights."""
        decoding = self.decoding_with(options.beam_size)
        if not 1 <= options.n_best <= decoding.beam_size:
            raise UserError(f"--n-best: expected 1 to the beam size ({decoding.beam_size}), got {options.n_best}")
        if options.wants_attention and self.config.model.decoder != "attention":
            raise UserError("--show-attention: this run's decoder (transformer) draws no attention over the image; "
                            "use a run of --decoder attention")
        self.model.eval()
        with torch.no_grad():
            found = self.captions(self.model, torch.stack([pixels for _, pixels, _ in inputs]), decoding, options.n_best)
        results = []
        for (path, pixels, mode), hypotheses in zip(inputs, found):
            captions = [caption_text(self.vocabulary.decode(hypothesis.tokens)) for hypothesis in hypotheses]
            result = {"image": path, "caption": captions[0], "score": hypotheses[0].score}
            if mode:
                result["notice"] = f"the image is {mode}, not RGB: read composed on white"
            if options.n_best > 1:
                result["hypotheses"] = [{"caption": caption, "score": hypothesis.score}
                                        for caption, hypothesis in zip(captions, hypotheses)]
            if options.wants_attention and hypotheses[0].attention is not None:
                words = [*self.vocabulary.decode(hypotheses[0].tokens), END]
                result["attention"] = {"pixels": pixels.tolist(), "words": words,
                                       "weights": hypotheses[0].attention.cpu().tolist()}
            results.append(result)
        return results

    def describe(self, result: dict) -> str:
        line = f"{result['image']}\t{result['caption']}" + (f"\t({result['notice']})" if "notice" in result else "")
        for rank, hypothesis in enumerate(result.get("hypotheses", [])[1:], start=2):
            line += f"\n  {rank}. {hypothesis['caption']}\t({hypothesis['score']:.3f})"
        return line

    # ----------------------------------------------------------------- rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def recurrent_layers(self) -> Recurrent:
        if self.config.model.decoder != "attention":
            raise UserError("rnnkit inspect: this run's decoder is the transformer baseline; it has no recurrent layer")
        return self.model.rnn

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """The first ``size`` validation images with their first captions (read from the run's files when restored)."""
        examples = self.splits.get("validation")
        if examples is None:
            examples = self.examples(read_image_splits(self.config.dataset)["validation"][:size], "validation")
        return examples.batch(list(range(min(size, len(examples.captions)))))

    def step_labels(self, batch: Batch) -> None:
        return None


class CaptionTask(Task):
    name = "caption"
    summary = "image captioning: a ResNet encoder and an attentive recurrent decoder (emoji, or your captioned images)"
    config_class = CaptionConfig
    session_class = CaptionSession
    commands = {"evaluate": CAPTION_EVALUATE, "predict": CAPTION_PREDICT}

    def start(self, config: CaptionConfig, context: Distributed, device: torch.device) -> CaptionSession:
        data = config.dataset
        splits = read_image_splits(data)
        session = CaptionSession(config, caption_vocabulary(splits["train"], data.min_count), device)
        session.splits = {split: session.examples(images, split) for split, images in splits.items()}
        train = session.splits["train"]
        if context.rank == 0:
            sizes = ", ".join(f"{split} {len(examples.references):,}" for split, examples in session.splits.items())
            print(f"caption: images {sizes} ({len(train.captions):,} training captions); vocabulary "
                  f"{len(session.vocabulary):,} words", file=sys.stderr)
        try:
            session.batches = CaptionBatches(train, config.train.batch_size, config.train.seed, data.augment,
                                             context.rank, context.world_size)
        except ValueError as error:
            raise UserError(f"--batch-size: {error}; lower --batch-size") from None
        return session

    def restore(self, config: CaptionConfig, task_state: dict, device: torch.device) -> CaptionSession:
        return CaptionSession(config, TokenVocabulary.from_state(task_state["vocabulary"]), device)
