"""``speech``: speech recognition (audio in, text out) with a CTC acoustic model, on AN4, FSDD or your own recordings.

Data (``--dataset``):
- ``an4``: CMU's AN4 as Sphinx MFCC files (``--data-dir``, default the shared folder); the
  validation set is whole training speakers held out (``--validation-utterances``), the test
  set AN4's 130 test utterances.
- ``fsdd``: the Free Spoken Digit Dataset's recordings, by ``--protocol``: ``official``
  (recordings 0-4 of every digit and speaker are test, 5-9 validation), ``speaker`` (every
  recording of ``--speaker`` is test: leave one speaker out), ``connected`` (strings of 2-6
  digits joined with pauses: trained on the other speakers' strings, tested on
  ``--speaker``'s).
- ``manifest``: ``--manifest FILE`` (NeMo JSON lines, or a CSV/TSV with path and transcript
  columns), with ``--dev-manifest`` and ``--test-manifest`` (without a validation manifest,
  ``--validation-utterances`` of the training utterances are held out).

Features: recordings go through the front end (``rnnkit.data.speech_features.FrontEnd``,
Sphinx's MFCC by default, so that AN4 models read 16 kHz audio) and every utterance, .mfc or
audio, through the same ``Pipeline`` (deltas, per-utterance normalisation, frame stacking).
Model: ``rnnkit.models.acoustic_model`` (a bidirectional recurrent stack of any cell, CTC over
the training transcripts' characters). An utterance too short for its transcript (CTC needs
a step per label, and a blank between repeated ones) is left out of training and counted.

Metrics: word and character error rates by ``jiwer``, greedy decoding during training;
``evaluate`` and ``predict`` decode as the ``decoding`` options say (prefix beam search with a
word n-gram language model; ``rnnkit.models.ctc_decoding``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence

from rnnkit.data.batch import Batch
from rnnkit.data.sentence_batches import SentenceBatches, batches_by_length, collate
from rnnkit.data.speech_corpora import (FSDD_SPEAKERS, DigitRecording, DigitString, Utterance, digit_strings,
                                        hold_out_speakers, read_an4, read_fsdd, read_manifest)
from rnnkit.data.speech_features import FrontEnd, Pipeline, frames_of, frames_of_string, pause
from rnnkit.data.vocabulary import CharVocabulary
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent
from rnnkit.metrics import speech_errors, utterance_errors
from rnnkit.models.acoustic_model import AcousticModel, AcousticModelConfig
from rnnkit.models.ctc_decoding import BLANK, PrefixScorer, greedy, prefix_beam_search
from rnnkit.models.dtw import connected_words, nearest_neighbour
from rnnkit.models.word_ngram import WordScorer, word_scorer
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.speech.commands import EVALUATE, PREDICT, SpeechPredictOptions, write_utterance_errors
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Monitor, Session

SHARED = Path("../shared/data")
DATASETS = ("an4", "fsdd", "manifest")
PROTOCOLS = ("official", "speaker", "connected")
EVALUATION_BATCH = 64
CONNECTED_STRINGS = {"train": 3000, "validation": 300, "test": 500}


@dataclass
class SpeechData:
    dataset: str = "an4"
    """an4, fsdd, or manifest (your own: --manifest)."""
    data_dir: str | None = None
    """The dataset's folder (default: its folder in ../shared/data)."""
    manifest: str | None = None
    """Your own training utterances: NeMo JSON lines, or a CSV/TSV with path and transcript columns."""
    dev_manifest: str | None = None
    """Your own validation utterances (default: --validation-utterances held out of --manifest)."""
    test_manifest: str | None = None
    """Your own test utterances (optional)."""
    validation_utterances: int = 100
    """an4 and --manifest without --dev-manifest: hold out whole speakers (an4) or utterances until this many."""
    protocol: str = "official"
    """fsdd: official (recordings 0-4 test), speaker (--speaker's recordings test) or connected (digit strings)."""
    speaker: str = "theo"
    """fsdd --protocol speaker|connected: the held-out speaker."""
    split_seed: int = 0
    """Seed of held-out speakers and utterances, and of the connected-digit strings."""

    def validate(self) -> None:
        if self.dataset not in DATASETS:
            raise UserError(f"--dataset: expected one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.dataset == "manifest" and not self.manifest:
            raise UserError("--dataset manifest: name your training utterances with --manifest FILE")
        if (self.dev_manifest or self.test_manifest) and not self.manifest:
            raise UserError("--dev-manifest/--test-manifest: give --manifest (your training utterances) too")
        if self.protocol not in PROTOCOLS:
            raise UserError(f"--protocol: expected one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.speaker not in FSDD_SPEAKERS:
            raise UserError(f"--speaker: expected one of FSDD's speakers {', '.join(FSDD_SPEAKERS)}, got {self.speaker!r}")
        if self.validation_utterances < 1:
            raise UserError(f"--validation-utterances: expected a positive integer, got {self.validation_utterances}")

    def source(self) -> str:
        """The data trained on: --manifest FILE alone says manifest."""
        return "manifest" if self.manifest else self.dataset

    def folder(self) -> Path:
        return Path(self.data_dir) if self.data_dir else SHARED / self.dataset


@dataclass
class CTCDecoding:
    """How evaluate and predict turn posteriors into text (training's evaluations are greedy)."""

    beam_size: int = 1
    """1: greedy (best path); more: prefix beam search keeping this many prefixes."""
    lm: str = "none"
    """Word language model of the beam search: none, transcripts (an n-gram of the training transcripts), or an
    ARPA file (an4's etc/an4.ug.lm)."""
    lm_order: int = 3
    """--lm transcripts: the n of the n-gram."""
    lm_weight: float = 0.5
    """alpha: the weight of the language model's log probability."""
    word_bonus: float = 1.0
    """beta: added per word (balances the language model's cost of every word)."""
    unknown_offset: float = 0.0
    """gamma: added per word the language model does not know (pyctcdecode's unk_score_offset, -10 there; 0: only
    the model's own <unk> probability). Negative for a closed vocabulary (FSDD's ten digits)."""
    n_best: int = 1
    """predict: this many best transcripts per input (at most the beam size)."""
    label_floor: float = -10.0
    """The beam search does not try a label at a step where its log posterior is below this (speed; pyctcdecode's
    token_min_logp); -inf tries every label."""

    def validate(self) -> None:
        for name in ("beam_size", "lm_order", "n_best"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(self, name)}")
        if self.lm != "none" and self.beam_size == 1:
            raise UserError(f"--lm {self.lm}: a language model is used by the beam search; give --beam-size > 1")
        if self.unknown_offset and self.lm == "none":
            raise UserError(f"--unknown-offset {self.unknown_offset:g}: it weighs words against a language model's "
                            "vocabulary; give --lm transcripts or an ARPA file")
        if self.n_best > self.beam_size:
            raise UserError(f"--n-best {self.n_best}: at most --beam-size ({self.beam_size}) transcripts are kept")
        if self.lm not in ("none", "transcripts") and not Path(self.lm).is_file():
            raise UserError(f"--lm: {self.lm} is not a file; give none, transcripts or an ARPA file's path")


@dataclass
class SpeechConfig(RunConfig):
    # GRU: on AN4 the LSTM of the same size was still emitting only blanks after 500 steps where the GRU had left
    # that plateau by step 125 (docs/benchmarks.md)
    model: AcousticModelConfig = field(default_factory=lambda: AcousticModelConfig(
        cell="gru", hidden_size=256, num_layers=4, bidirectional=True, dropout=0.2))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=16, lr=2e-3, max_minutes=50.0, eval_every=200, clip_grad_norm=5.0, keep_best=True, precision="fp32"))
    dataset: SpeechData = field(default_factory=SpeechData)
    front_end: FrontEnd = field(default_factory=FrontEnd)
    pipeline: Pipeline = field(default_factory=Pipeline)
    decoding: CTCDecoding = field(default_factory=CTCDecoding)

    GROUPS = ("model", "train", "dataset", "front_end", "pipeline", "decoding")


@dataclass
class SpeechExamples:
    features: list[torch.Tensor]  # (T_i, F) what the model reads
    targets: list[torch.Tensor]  # (L_i,) label ids
    texts: list[str]  # the transcripts
    names: list[str]  # where each came from


def read_utterances(data: SpeechData) -> dict[str, list[Utterance | DigitString]]:
    """The train, validation and (where there is one) test utterances ``data`` names (the module docstring)."""
    if data.source() == "an4":
        splits = read_an4(data.folder())
        train, validation = hold_out_speakers(splits["train"], data.validation_utterances, data.split_seed)
        return {"train": train, "validation": validation, "test": splits["test"]}
    if data.source() == "fsdd":
        return fsdd_splits(data)
    train = read_manifest(data.manifest)
    if data.dev_manifest:
        validation = read_manifest(data.dev_manifest)
    else:  # a manifest names no speakers: each utterance counts as its own, so utterances are held out one by one
        train, validation = hold_out_speakers([Utterance(u.path, u.text, u.where, speaker=u.where) for u in train],
                                              data.validation_utterances, data.split_seed)
    splits = {"train": train, "validation": validation}
    if data.test_manifest:
        splits["test"] = read_manifest(data.test_manifest)
    return splits


def fsdd_splits(data: SpeechData) -> dict[str, list[Utterance | DigitString]]:
    recordings = read_fsdd(data.folder())
    if data.protocol == "official":
        return {"train": [r.utterance for r in recordings if r.index >= 10],
                "validation": [r.utterance for r in recordings if 5 <= r.index < 10],
                "test": [r.utterance for r in recordings if r.index < 5]}
    others = [r for r in recordings if r.utterance.speaker != data.speaker]
    held_out = [r for r in recordings if r.utterance.speaker == data.speaker]
    if data.protocol == "speaker":
        return {"train": [r.utterance for r in others if r.index >= 5],
                "validation": [r.utterance for r in others if r.index < 5],
                "test": [r.utterance for r in held_out]}
    seed = data.split_seed
    return {"train": digit_strings(connected_training_digits(others), CONNECTED_STRINGS["train"], seed),
            "validation": digit_strings([r for r in others if r.index < 5], CONNECTED_STRINGS["validation"], seed + 1),
            "test": digit_strings(held_out, CONNECTED_STRINGS["test"], seed + 2)}


def connected_training_digits(others: list[DigitRecording]) -> list[DigitRecording]:
    """The recordings FSDD's connected protocol makes its training strings of (the rest validate): also the
    templates of its DTW baseline."""
    return [r for r in others if r.index >= 5]


class SpeechSession(Session):
    monitor = Monitor("wer", "min")
    unit = "frame"

    def __init__(self, config: SpeechConfig, characters: CharVocabulary, transcripts: list[str],
                 device: torch.device) -> None:
        self.config, self.characters, self.transcripts, self.device = config, characters, transcripts, device
        self.model = AcousticModel(config.pipeline.size(config.front_end.size), len(characters) + 1, config.model,
                                   config.pipeline.stack).to(device)
        self.batches = None
        self.splits: dict[str, SpeechExamples] = {}
        self.training: SpeechExamples | None = None  # for the DTW baseline; None in a restored session
        self._scorers: dict[tuple, WordScorer | None] = {}

    def task_state(self) -> dict:
        # the transcripts rebuild --lm transcripts' n-gram for evaluate and predict
        return {"characters": self.characters.to_state(), "transcripts": self.transcripts}

    def units_in(self, batch: Batch) -> int:
        return int(batch.lengths.sum())

    # ----------------------------------------------------------------- examples
    def features(self, item: Utterance | DigitString, seed: int = 0,
                 pipeline: Pipeline | None = None) -> tuple[torch.Tensor, float, bool]:
        """(what the model reads, or ``pipeline`` makes, seconds of audio, mixed down) of an utterance."""
        if isinstance(item, DigitString):
            frames = frames_of_string(item.parts, item.pauses, self.config.front_end, seed)
            seconds, mixed_down = frames.shape[0] * self.config.front_end.hop_ms / 1000, False
        else:
            frames, seconds, mixed_down = frames_of(item.path, self.config.front_end)
        return (pipeline or self.config.pipeline)(frames), seconds, mixed_down

    def labels(self, text: str, where: str) -> torch.Tensor:
        return self.characters.encode(text, where=f"{where}: the transcript") + 1  # label 0 is the blank

    def examples(self, items: list[Utterance | DigitString], split: str) -> SpeechExamples:
        """The split's utterances as the model reads them; in training, those too short for CTC are left out."""
        examples = SpeechExamples([], [], [], [])
        too_short, mixed = 0, 0
        for number, item in enumerate(items):
            features, _, mixed_down = self.features(item, seed=number)
            mixed += mixed_down
            targets = self.labels(item.text, item.where)
            if split == "train" and not fits_ctc(targets, int(self.model.output_lengths(torch.tensor(features.shape[0])))):
                too_short += 1
                continue
            examples.features.append(features)
            examples.targets.append(targets)
            examples.texts.append(item.text)
            examples.names.append(item.where)
        if too_short:
            print(f"speech: left {too_short} of {len(items)} training utterances out: too few steps for their "
                  "transcripts (CTC needs one per character, and a blank between repeated ones)", file=sys.stderr)
        if mixed:
            print(f"speech: {split}: {mixed} recordings had several channels, mixed down to one", file=sys.stderr)
        return examples

    # ----------------------------------------------------------------- decoding and evaluation
    def scorer(self, decoding: CTCDecoding) -> PrefixScorer:
        key = (decoding.lm, decoding.lm_order)
        if key not in self._scorers:
            self._scorers[key] = word_scorer(decoding.lm, self.transcripts, decoding.lm_order)
        characters = self.characters.characters
        space = characters.index(" ") + 1 if " " in characters else -1
        return PrefixScorer(characters, space, self._scorers[key], decoding.lm_weight, decoding.word_bonus,
                            decoding.unknown_offset)

    def transcribe(self, model, features: list[torch.Tensor], decoding: CTCDecoding | None = None) -> list[list[tuple[str, float]]]:
        """The best (transcript, score) of each utterance, best first, in the order given (greedy: one each, its
        score the best path's log probability)."""
        results: list[list[tuple[str, float]]] = [[] for _ in features]
        beam = decoding is not None and decoding.beam_size > 1
        scorer = self.scorer(decoding) if beam else None
        for indices, batch in batches_by_length(features, None, EVALUATION_BATCH):
            log_probs, _, _ = model(batch.inputs.to(self.device), lengths=batch.lengths)
            steps = model.output_lengths(batch.lengths)
            log_probs = log_probs.cpu()
            if not beam:
                best_paths = log_probs.max(-1).values  # (T', B)
                for column, (index, labels) in enumerate(zip(indices, greedy(log_probs, steps))):
                    score = float(best_paths[: steps[column], column].sum())
                    results[index] = [(self.text(labels), score)]
                continue
            for column, index in enumerate(indices):
                found = prefix_beam_search(log_probs[: steps[column], column], scorer, decoding.beam_size,
                                           decoding.label_floor)
                results[index] = [(self.text(scored.labels), scored.score) for scored in found]
        return results

    def text(self, labels) -> str:
        return " ".join(self.characters.decode(label - 1 for label in labels).split())

    def evaluate(self, model, examples: SpeechExamples | None = None, decoding: CTCDecoding | None = None) -> dict:
        """Loss, WER and CER on ``examples`` (default: the validation split), greedy unless ``decoding`` says."""
        return self.scores(model, examples or self.splits["validation"], decoding)[0]

    def scores(self, model, examples: SpeechExamples, decoding: CTCDecoding | None = None) -> tuple[dict, list[str]]:
        """``evaluate``'s metrics, and the transcripts they score."""
        total, count = 0.0, 0
        for indices, _ in batches_by_length(examples.features, None, EVALUATION_BATCH):
            batch = utterance_batch([examples.features[i] for i in indices], [examples.targets[i] for i in indices])
            _, loss, _ = model(batch.inputs.to(self.device), lengths=batch.lengths, targets=batch.targets.to(self.device))
            total += float(loss) * batch.size
            count += batch.size
        written = self.best_transcripts(model, examples, decoding)
        return {"loss": total / count, **speech_errors(examples.texts, written)}, written

    def best_transcripts(self, model, examples: SpeechExamples, decoding: CTCDecoding | None = None) -> list[str]:
        return [found[0][0] for found in self.transcribe(model, examples.features, decoding)]

    def report(self, metrics: dict, label: str = "validation") -> str:
        return (f"{label} WER {metrics['wer']:.2%}, CER {metrics['cer']:.2%}, {metrics['exact']:.2%} of utterances "
                f"exact ({metrics['words']} words, {metrics['utterances']} utterances), CTC loss {metrics['loss']:.4f}")

    def test_summary(self) -> dict:
        if "test" not in self.splits:
            return {}
        self.model.eval()
        with torch.no_grad():
            summary = {"test": self.evaluate(self.model, self.splits["test"])}
            decoding = self.config.decoding
            if decoding.beam_size > 1:
                summary["test_beam"] = self.evaluate(self.model, self.splits["test"], decoding)
        if self.training is not None:
            summary.update(self.baseline())
        return summary

    def baseline(self) -> dict:
        """DTW template matching (rnnkit.models.dtw) on the test split, where the run has isolated words to match:
        the nearest training utterance when every training transcript is one word; the best sequence of templates
        for FSDD's connected digits (the isolated recordings its training strings are made of, 10 per speaker and
        digit as the search is linear in template frames, and a pause)."""
        test = self.splits["test"]
        if all(" " not in text for text in self.training.texts):
            written = nearest_neighbour(test.features, self.training.features, self.training.texts)
            what = "DTW nearest neighbour over the training utterances (isolated words)"
        elif self.config.dataset.source() == "fsdd" and self.config.dataset.protocol == "connected":
            data, front_end = self.config.dataset, self.config.front_end
            # raw cepstra and deltas: normalising each utterance would give a string's pauses a level that no
            # isolated template has; one frame per step, as the classic recognisers matched
            raw = replace(self.config.pipeline, normalise=False, stack=1)
            others = [r for r in read_fsdd(data.folder()) if r.utterance.speaker != data.speaker]
            templates = [r.utterance for r in connected_training_digits(others) if r.index < 15]
            references = [self.features(utterance, pipeline=raw)[0] for utterance in templates]
            silence = pause(0.1, front_end.sample_rate, torch.Generator().manual_seed(0))
            references.append(raw(front_end(silence))[1:2])  # an inner frame: the deltas of the edges see past it
            labels = [utterance.text for utterance in templates] + [""]
            queries = [self.features(item, number, raw)[0] for number, item in enumerate(read_utterances(data)["test"])]
            written = [" ".join(" ".join(connected_words(query, references, labels)).split()) for query in queries]
            what = "one-stage DTW over 10 isolated training recordings per speaker and digit, and a pause"
        else:
            return {}
        return {"baseline": {**speech_errors(test.texts, written), "what": what}}

    def write_files(self, folder: Path) -> list[Path]:
        """test_utterances.jsonl: every test utterance's reference, transcript and errors."""
        if "test" not in self.splits:
            return []
        examples = self.splits["test"]
        self.model.eval()
        with torch.no_grad():
            _, written = self.scores(self.model, examples)
        path = folder / "test_utterances.jsonl"
        write_utterance_errors(path, utterance_errors(examples.texts, written, examples.names))
        return [path]

    def labelled_utterances(self, manifest: str | None, split: str = "test") -> SpeechExamples | None:
        """``rnnkit evaluate``'s utterances: a manifest's, or the run's ``split`` (None if it has none)."""
        items = read_manifest(manifest) if manifest else read_utterances(self.config.dataset).get(split)
        return None if items is None else self.examples(items, "evaluation")

    # ----------------------------------------------------------------- rnnkit predict (rnnkit.tasks.predict.Predictor)
    def parse_input(self, text: str) -> tuple[str, torch.Tensor, float, bool]:
        path = text.strip()
        if not path:
            raise ValueError("the input is empty; give the path of a recording (WAV, FLAC, ...)")
        features, seconds, mixed_down = self.features(Utterance(Path(path), "", path))
        return path, features, seconds, mixed_down

    def input_length(self, parsed: tuple[str, torch.Tensor, float, bool]) -> int:
        return parsed[1].shape[0]

    def predict(self, inputs: list[tuple[str, torch.Tensor, float, bool]], options: SpeechPredictOptions) -> list[dict]:
        decoding = options.over(self.config.decoding)
        self.model.eval()
        with torch.no_grad():
            found = self.transcribe(self.model, [features for _, features, _, _ in inputs], decoding)
        records = []
        for (path, _, seconds, mixed_down), best in zip(inputs, found):
            record = {"audio": path, "duration": round(seconds, 3), "transcript": best[0][0], "score": best[0][1]}
            if decoding.n_best > 1:
                record["n_best"] = [{"transcript": text, "score": score} for text, score in best[: decoding.n_best]]
            if mixed_down:
                record["mixed_down"] = True
            records.append(record)
        return records

    def describe(self, result: dict) -> str:
        return f"{result['audio']}\t{result['transcript']}"

    # ----------------------------------------------------------------- rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def recurrent_layers(self) -> Recurrent:
        return self.model.rnn

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """The first ``size`` validation utterances (read again when restored), padded."""
        examples = self.splits.get("validation") or self.examples(read_utterances(self.config.dataset)["validation"][:size],
                                                                   "validation")
        return utterance_batch(examples.features[:size], examples.targets[:size])

    def step_labels(self, batch: Batch) -> None:
        return None


def utterance_batch(features: list[torch.Tensor], targets: list[torch.Tensor]) -> Batch:
    """Utterances padded to the longest, their transcripts to the longest transcript (with the blank): a held-out
    utterance may be shorter than its transcript, and then counts 0 to the loss (and its errors to the rates)."""
    return replace(collate(features, None), targets=pad_sequence(targets, padding_value=BLANK))  # targets (S, B)


def fits_ctc(targets: torch.Tensor, steps: int) -> bool:
    """Whether ``steps`` outputs can emit ``targets``: one step per label, plus a blank between equal neighbours."""
    repeats = int((targets[1:] == targets[:-1]).sum()) if targets.numel() > 1 else 0
    return targets.numel() + repeats <= steps


class SpeechTask(Task):
    name = "speech"
    summary = "speech recognition (audio to text): a bidirectional recurrent CTC model on AN4, FSDD or a manifest"
    config_class = SpeechConfig
    session_class = SpeechSession
    commands = {"evaluate": EVALUATE, "predict": PREDICT}

    def start(self, config: SpeechConfig, context: Distributed, device: torch.device) -> SpeechSession:
        splits = read_utterances(config.dataset)
        characters = CharVocabulary.from_text("".join(item.text for item in splits["train"]))
        session = SpeechSession(config, characters, [item.text for item in splits["train"]], device)
        session.splits = {split: session.examples(splits[split], split) for split in ("validation", "test")
                          if split in splits}
        session.training = train = session.examples(splits["train"], "train")
        if len(train.features) < config.train.batch_size * context.world_size:
            raise UserError(f"--batch-size: {len(train.features)} training utterances cannot fill a batch of "
                            f"{config.train.batch_size} x {context.world_size} processes; lower --batch-size")
        session.batches = SentenceBatches(train.features, train.targets, config.train.batch_size, config.train.seed,
                                          context.rank, context.world_size)
        frames = sum(features.shape[0] for features in train.features)
        print(f"speech: {config.dataset.source()}: {len(train.features):,} training utterances ({frames:,} steps), "
              f"{len(session.splits['validation'].features):,} validation, "
              f"{len(session.splits['test'].features) if 'test' in session.splits else 0:,} test; "
              f"{len(characters)} characters", file=sys.stderr)
        return session

    def restore(self, config: SpeechConfig, task_state: dict, device: torch.device) -> SpeechSession:
        return SpeechSession(config, CharVocabulary.from_state(task_state["characters"]), task_state["transcripts"],
                             device)
