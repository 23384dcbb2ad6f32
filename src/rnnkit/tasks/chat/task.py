"""``chat``: a chatbot: the next utterance of a conversation from the ones before it (DailyDialog or your dialogues).

Data: DailyDialog's split zips in ``--data-dir`` (train 11,118 / validation 1,000 / test 1,000
dialogues), or ``--dialogues FILE`` (``rnnkit.data.dialogues`` lists the formats) with
``--valid-dialogues`` (default: the file's last tenth) and ``--test-dialogues``. Every turn of
every dialogue is an example, the context its ``--context-turns`` previous utterances, marked by
speaker. Vocabulary: the ``--vocab-size`` most frequent training words, one for contexts and
replies (the perplexity is on this fixed vocabulary; every other word reads as ``<unk>``).

Model (``--structure``, ``rnnkit.models.dialogue``): flat (translate's attention
encoder–decoder over the joined context), hred (an utterance encoder and a context RNN, the same
decoder) or transformer (``torch.nn.Transformer``, the baseline), trained with teacher forcing
on batches of about ``--max-tokens`` tokens.

Validation (what ``--keep-best`` keeps) is the perplexity of the validation replies. Test
metrics (``rnnkit.metrics.dialogue_metrics``): perplexity; NLTK sentence BLEU-1/2 (smoothing 7),
sacrebleu's corpus BLEU and distinct-1/2 of the replies found greedily, by the run's beam
search and by sampling (``decoding`` options); on the whole test set and on its examples whose
context never occurs in training (``test_unseen``); beside two calibration rows, the reference
replies themselves and random training replies.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Iterator

import torch

from rnnkit.data.batch import Batch
from rnnkit.data.dialogues import (BOT, USER, ChatExample, Dialogue, ReplyExamples, context_ids, context_words,
                                   dialogue_examples, dialogue_vocabulary, dialogue_words, read_dailydialog,
                                   read_dialogues, reply_examples, unseen_contexts)
from rnnkit.data.pair_batches import PairBatches, collate_pairs, pairs_by_length
from rnnkit.data.splits import hold_out_last_tenth
from rnnkit.data.tokenization import moses_detokenizer
from rnnkit.data.vocabulary import BEGIN, END, PADDING, UNKNOWN, TokenVocabulary
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent
from rnnkit.metrics import dialogue_metrics, perplexity
from rnnkit.models.dialogue import ChatDecodingConfig, ChatModelConfig, build_chat_model, find_replies, streamed_reply
from rnnkit.models.search import Hypothesis
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.chat.commands import CHAT, CHAT_EVALUATE, CHAT_PREDICT, ChatDecodingOptions, ChatPredictOptions
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Monitor, Session

DAILYDIALOG = "../shared/data/dailydialog"
EVALUATION_BATCH = 128  # examples per perplexity batch


@dataclass
class ChatData:
    data_dir: str = DAILYDIALOG
    """DailyDialog's folder: train.zip, validation.zip, test.zip (read in place)."""
    dialogues: str | None = None
    """Your own training dialogues instead: one a line, utterances separated by __eou__, or JSON lines (.jsonl)."""
    valid_dialogues: str | None = None
    """Your own validation dialogues (default: the last tenth of --dialogues)."""
    test_dialogues: str | None = None
    """Your own test dialogues (optional)."""
    context_turns: int = 3
    """Utterances before a reply that the model reads."""
    vocab_size: int = 10000
    """Words the model knows (the most frequent training words, special tokens included); the rest read as <unk>."""
    max_context_words: int = 100
    """Read at most the context's last this many words (the oldest dropped)."""
    max_reply_words: int = 40
    """Training replies are cut after this many words (the metrics read them whole)."""
    max_tokens: int = 6000
    """At most this many tokens per training batch and process (pairs x the longer side), as fairseq's --max-tokens."""

    def validate(self) -> None:
        for name in ("context_turns", "vocab_size", "max_context_words", "max_reply_words", "max_tokens"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(self, name)}")
        if (self.valid_dialogues or self.test_dialogues) and not self.dialogues:
            raise UserError("--valid-dialogues/--test-dialogues: give your training dialogues with --dialogues too")


@dataclass
class ChatConfig(RunConfig):
    model: ChatModelConfig = field(default_factory=lambda: ChatModelConfig(
        cell="gru", hidden_size=512, num_layers=1, bidirectional=True, embedding_size=256, dropout=0.3,
        architecture="attention", score="additive", input_feeding=False, label_smoothing=0.1))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=128, optimizer="adam", lr=1e-3, schedule="constant", epochs=0, max_minutes=60.0, eval_every=500,
        clip_grad_norm=1.0, keep_best=True, precision="fp32"))
    dataset: ChatData = field(default_factory=ChatData)
    decoding: ChatDecodingConfig = field(default_factory=lambda: ChatDecodingConfig(
        beam_size=5, length_penalty="gnmt", alpha=0.6, max_length_ratio=0.0, max_length_extra=40))

    GROUPS = ("model", "train", "dataset", "decoding")


def read_dialogue_splits(data: ChatData) -> dict[str, list[Dialogue]]:
    """The train, validation and (where there is one) test dialogues of --data-dir or of your own files."""
    if data.dialogues:
        train = read_dialogues(data.dialogues)
        if data.valid_dialogues:
            splits = {"train": train, "validation": read_dialogues(data.valid_dialogues, "--valid-dialogues")}
        else:
            train, validation = hold_out_last_tenth(train, f"--dialogues: {data.dialogues} has {len(train)} dialogue(s), "
                                                    "too few to hold some out for validation; add dialogues or pass "
                                                    "--valid-dialogues")
            splits = {"train": train, "validation": validation}
        if data.test_dialogues:
            splits["test"] = read_dialogues(data.test_dialogues, "--test-dialogues")
        return splits
    if not Path(data.data_dir).is_dir():
        raise UserError(f"--data-dir: {data.data_dir} is not a folder; pass DailyDialog's folder, or your own "
                        "dialogues with --dialogues")
    return {split: read_dailydialog(data.data_dir, split) for split in ("train", "validation", "test")}


@dataclass
class TestSet:
    """Test examples as the model reads them, and the subsets reported (name -> rows): the whole set, and for
    DailyDialog's test set also the examples whose context never occurs in training."""

    examples: list[ChatExample]
    encoded: ReplyExamples
    subsets: dict[str, list[int]]


class ChatSession(Session):
    monitor = Monitor("perplexity", "min")
    unit = "reply"

    def __init__(self, config: ChatConfig, vocabulary: TokenVocabulary, device: torch.device) -> None:
        self.config, self.vocabulary, self.device = config, vocabulary, device
        index = vocabulary.index
        self.model = build_chat_model(len(vocabulary), config.model, (index[USER], index[BOT])).to(device)
        self.batches = None
        self.validation: ReplyExamples | None = None
        self.test: TestSet | None = None
        self.known_replies: list[list[str]] | None = None  # the training replies, once read

    def task_state(self) -> dict:
        return {"vocabulary": self.vocabulary.to_state()}

    def encode(self, examples: list[ChatExample]) -> ReplyExamples:
        data = self.config.dataset
        return reply_examples(examples, self.vocabulary, data.max_context_words, data.max_reply_words)

    def loss_terms(self, batch: Batch) -> int:
        return int((batch.targets[1:] != self.vocabulary.index[PADDING]).sum())  # cross-entropy per reply word

    # ----------------------------------------------------------------- replies
    def replies(self, sources: list[torch.Tensor], decoding: ChatDecodingConfig, n_best: int = 1) -> list[list[Hypothesis]]:
        """The n-best replies to every context (ids), as ``decoding`` finds them, in the order given."""
        self.model.eval()
        return find_replies(self.model, sources, decoding, **self.markers(),
                            empty=context_ids([""], self.vocabulary, 1), n_best=n_best)

    def markers(self) -> dict:
        """The reply's first and last words, and the words it never writes: what every search is told."""
        index = self.vocabulary.index
        return {"begin": index[BEGIN], "end": index[END], "never": (index[PADDING], index[BEGIN], index[USER], index[BOT])}

    def reply_words(self, hypothesis: Hypothesis) -> list[str]:
        return self.vocabulary.decode(hypothesis.tokens)

    # ----------------------------------------------------------------- evaluation
    def perplexity(self, model, examples: ReplyExamples) -> float:
        """exp(mean cross-entropy per reply word, <eos> included) of the reference replies (as trained: cut at
        --max-reply-words)."""
        total, words = 0.0, 0
        for _, batch in pairs_by_length(examples.sources, examples.targets, EVALUATION_BATCH):
            batch = batch.to(self.device)
            _, loss, _ = model(batch.inputs, lengths=batch.lengths, targets=batch.targets)
            count = int((batch.targets[1:] != 0).sum())
            total, words = total + float(loss) * count, words + count
        return perplexity(total / words)

    def evaluate(self, model, examples: ReplyExamples | None = None) -> dict:
        return {"perplexity": self.perplexity(model, examples or self.validation)}

    def decodings(self, decoding: ChatDecodingConfig) -> dict[str, ChatDecodingConfig]:
        """What the test metrics compare: greedy, the run's beam search and its sampling."""
        return {"greedy": replace(decoding, strategy="beam", beam_size=1, anti_lm=0.0),
                "beam": replace(decoding, strategy="beam"), "sample": replace(decoding, strategy="sample")}

    def final_metrics(self, test: TestSet, decoding: ChatDecodingConfig) -> dict[str, dict]:
        """Each subset's perplexity, each decoding's BLEU and distinct-n, and the calibration rows. The replies are
        found once for the whole set."""
        self.model.eval()
        with torch.no_grad():
            replies = {name: [self.reply_words(hypotheses[0]) for hypotheses in self.replies(test.encoded.sources, chosen)]
                       for name, chosen in self.decodings(decoding).items()}
            results = {}
            for subset, rows in test.subsets.items():
                encoded = test.encoded
                picked = ReplyExamples([encoded.sources[row] for row in rows], [encoded.targets[row] for row in rows],
                                       [encoded.references[row] for row in rows])
                results[subset] = {"examples": len(rows), "vocabulary": len(self.vocabulary),
                                   "perplexity": self.perplexity(self.model, picked),
                                   **{name: dialogue_metrics([found[row] for row in rows], picked.references)
                                      for name, found in replies.items()},
                                   "calibration": self.calibration(picked.references)}
        return results

    def calibration(self, references: list[list[str]]) -> dict:
        """The metrics' range on a set: its reference replies as replies, and random training replies (seeded)."""
        drawn = random.Random(0).choices(self.training_replies(), k=len(references))
        return {"ground_truth": dialogue_metrics(references, references),
                "random_training_replies": dialogue_metrics(drawn, references)}

    def training_replies(self) -> list[list[str]]:
        """Every training reply's words (the random-reply calibration row draws from them), read again in a session
        restored from a checkpoint."""
        if self.known_replies is None:
            data = self.config.dataset
            examples = dialogue_examples(read_dialogue_splits(data)["train"], data.context_turns)
            self.known_replies = [dialogue_words(example.response) for example in examples]
        return self.known_replies

    def test_summary(self) -> dict:
        return {} if self.test is None else self.final_metrics(self.test, self.config.decoding)

    def report(self, metrics: dict, label: str = "validation") -> str:
        line = f"{label} perplexity {metrics['perplexity']:.2f}"
        for name in ("greedy", "beam", "sample"):
            if name in metrics:
                found = metrics[name]
                line += (f"; {name}: BLEU-1/2 {found['bleu1']:.4f}/{found['bleu2']:.4f}, corpus BLEU "
                         f"{found['corpus_bleu']:.2f}, distinct-1/2 {found['distinct1']:.4f}/{found['distinct2']:.4f}")
        if "calibration" in metrics:
            truth = metrics["calibration"]["ground_truth"]
            line += f"; ground truth distinct-1/2 {truth['distinct1']:.4f}/{truth['distinct2']:.4f}"
        return line

    def labelled_set(self, dialogues: str | None) -> TestSet:
        """``rnnkit evaluate``'s data: a dialogue file, or the run's test set (whole, and unseen contexts only)."""
        data = self.config.dataset
        if dialogues:
            examples = dialogue_examples(read_dialogues(dialogues, "--dialogues"), data.context_turns)
            return TestSet(examples, self.encode(examples), {"evaluation": list(range(len(examples)))})
        test = self.test_set_of(read_dialogue_splits(data))
        if test is None:
            raise UserError("the run was trained without a test split: pass --dialogues FILE")
        return test

    def test_set_of(self, splits: dict[str, list[Dialogue]]) -> TestSet | None:
        """The test split's examples, with the rows whose context never occurs in the training split."""
        if "test" not in splits:
            return None
        turns = self.config.dataset.context_turns
        examples = dialogue_examples(splits["test"], turns)
        unseen = unseen_contexts(examples, dialogue_examples(splits["train"], turns))
        return TestSet(examples, self.encode(examples), {"test": list(range(len(examples))), "test_unseen": unseen})

    # ----------------------------------------------------------------- rnnkit predict and chat
    def decoding_with(self, options: ChatDecodingOptions) -> ChatDecodingConfig:
        """The run's decoding options, with those ``options`` set (None: the run's)."""
        names = {option.name for option in fields(self.config.decoding)}
        changed = {name: value for name, value in vars(options).items() if name in names and value is not None}
        decoding = replace(self.config.decoding, **changed)
        decoding.validate()
        return decoding

    def parse_input(self, text: str) -> tuple[str, list[str]]:
        """A context: its utterances separated by ' __eou__ ', oldest first (the last is the user's; ``answer`` keeps
        the turns the model reads)."""
        context = [utterance.strip() for utterance in text.split("__eou__") if utterance.strip()]
        if not context or not any(dialogue_words(utterance) for utterance in context):
            raise ValueError("the message is empty; write something to reply to")
        return text, context

    def input_length(self, parsed: tuple[str, list[str]]) -> int:
        return sum(len(dialogue_words(utterance)) for utterance in parsed[1])

    def predict(self, inputs: list[tuple[str, list[str]]], options: ChatPredictOptions) -> list[dict]:
        """A reply to each context, its score (log-probability, length-penalised), and the n-best with --n-best."""
        decoding = self.decoding_with(options)
        if options.n_best < 1 or options.n_best > decoding.kept():
            raise UserError(f"--n-best: expected 1 to {decoding.kept()} (the beam size, or --samples when sampling), "
                            f"got {options.n_best}")
        answers = self.answer([context for _, context in inputs], decoding, options.n_best)
        return [{"context": text, **answer} for (text, _), answer in zip(inputs, answers)]

    def answer(self, contexts: list[list[str]], decoding: ChatDecodingConfig, n_best: int = 1) -> list[dict]:
        """The reply to each context (utterances, oldest first; the model reads the last --context-turns), its score,
        the n-best beyond 1, and a warning or notice where the model could not read all of the message."""
        contexts = [context[-self.config.dataset.context_turns:] for context in contexts]
        with torch.no_grad():
            found = self.replies([self.context_source(context) for context in contexts], decoding, n_best)
        return [self.answer_record(context, hypotheses, n_best) for context, hypotheses in zip(contexts, found)]

    @torch.no_grad()  # on the generator, not a block in it: gradients stay off only while it runs
    def streamed_answer(self, context: list[str], decoding: ChatDecodingConfig) -> Iterator[dict]:
        """``answer`` for one context as events: {"token": WORD} as each word of the reply is chosen (the words as
        the model writes them; the record's reply is detokenized), then {"output": RECORD}. Greedy decoding and one
        sample stream; a decoding that knows its reply only at the end says so (UserError)."""
        context = context[-self.config.dataset.context_turns:]
        self.model.eval()
        words = streamed_reply(self.model, self.context_source(context), decoding, **self.markers())
        while True:
            try:
                yield {"token": self.vocabulary.decode([next(words)])[0]}
            except StopIteration as finished:
                hypothesis = finished.value
                break
        yield {"output": self.answer_record(context, [hypothesis], n_best=1)}

    def context_source(self, context: list[str]) -> torch.Tensor:
        return context_ids(context, self.vocabulary, self.config.dataset.max_context_words)

    def answer_record(self, context: list[str], hypotheses: list[Hypothesis], n_best: int) -> dict:
        """The record of the best ``hypotheses`` to ``context``: ``answer``'s, and 'predict --format jsonl''s."""
        limit = self.config.dataset.max_context_words
        detokenize = moses_detokenizer("en")
        replies = [detokenize(self.reply_words(hypothesis)) for hypothesis in hypotheses]
        answer = {"response": replies[0], "score": hypotheses[0].score}
        if all(word not in self.vocabulary.index for word in dialogue_words(context[-1])):
            answer["warning"] = "no word of the message is in the model's vocabulary; the reply is a guess"
        if len(context_words(context)) > limit:
            answer["notice"] = f"the conversation was cut to its last {limit} words"
        if n_best > 1:
            answer["hypotheses"] = [{"response": reply, "score": hypothesis.score}
                                    for reply, hypothesis in zip(replies, hypotheses)]
        return answer

    def describe(self, result: dict) -> str:
        line = result["response"]
        for key in ("warning", "notice"):
            if key in result:
                line += f"\t({key}: {result[key]})"
        for rank, hypothesis in enumerate(result.get("hypotheses", [])[1:], start=2):
            line += f"\n  {rank}. {hypothesis['response']}\t({hypothesis['score']:.3f})"
        return line

    # ----------------------------------------------------------------- rnnkit inspect
    def recurrent_layers(self) -> Recurrent:
        encoder = getattr(self.model, "encoder", None)
        if encoder is None:
            raise UserError("rnnkit inspect: this run's model is the transformer baseline; it has no recurrent layer")
        return getattr(encoder, "utterances", encoder).rnn  # hred: the utterance encoder

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        examples = self.validation
        if examples is None:
            data = self.config.dataset
            examples = self.encode(dialogue_examples(read_dialogue_splits(data)["validation"], data.context_turns))
        return collate_pairs(examples.sources[:size], examples.targets[:size])

    def step_labels(self, batch: Batch) -> None:
        return None


class ChatTask(Task):
    name = "chat"
    summary = "dialogue: a chatbot replying to the last turns of a conversation (DailyDialog, or your dialogues)"
    config_class = ChatConfig
    session_class = ChatSession
    commands = {"evaluate": CHAT_EVALUATE, "predict": CHAT_PREDICT, "chat": CHAT}

    def start(self, config: ChatConfig, context: Distributed, device: torch.device) -> ChatSession:
        data = config.dataset
        splits = read_dialogue_splits(data)
        session = ChatSession(config, dialogue_vocabulary(splits["train"], data.vocab_size), device)
        train_examples = dialogue_examples(splits["train"], data.context_turns)
        session.validation = session.encode(dialogue_examples(splits["validation"], data.context_turns))
        session.test = session.test_set_of(splits)
        train = session.encode(train_examples)
        session.known_replies = train.references
        if context.rank == 0:
            tested = "" if session.test is None else (
                f", test {len(session.test.examples):,} ({len(session.test.subsets['test_unseen']):,} with a context "
                "unseen in training)")
            print(f"chat: {len(train_examples):,} training replies, validation {len(session.validation.sources):,}"
                  f"{tested}; vocabulary {len(session.vocabulary):,} words", file=sys.stderr)
        try:
            session.batches = PairBatches(train.sources, train.targets, data.max_tokens * context.world_size,
                                          config.train.batch_size * context.world_size, config.train.seed, context.rank,
                                          context.world_size)
        except ValueError as error:
            raise UserError(f"--max-tokens: {error}; raise --max-tokens") from None
        return session

    def restore(self, config: ChatConfig, task_state: dict, device: torch.device) -> ChatSession:
        return ChatSession(config, TokenVocabulary.from_state(task_state["vocabulary"]), device)
