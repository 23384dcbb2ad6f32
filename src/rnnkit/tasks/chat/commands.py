"""The commands of chat runs: ``chat`` (a conversation in the terminal), ``predict`` and ``evaluate``.

    rnnkit chat --checkpoint RUN [decoding options]
    rnnkit predict --checkpoint RUN "How was your weekend?" [--file CONTEXTS] [--n-best N] [decoding options]
    rnnkit evaluate --checkpoint RUN [--dialogues FILE] [decoding options]

A ``predict`` input is a context: its utterances separated by `` __eou__ ``, oldest first, the
last one the message to answer. Its record is ``{"context", "response", "score"}`` (and
``hypotheses`` with ``--n-best``). Decoding options left out are the run's (``decoding`` in its
config.yaml).

``rnnkit chat`` keeps the conversation (the model reads its last ``--context-turns`` utterances)
and reads one message a line: with line editing and history where standard input is a
terminal, and from a pipe too (then without prompts). ``/reset`` starts a new conversation,
``/quit`` (or Ctrl-D, or Ctrl-C) ends it, ``/set NAME VALUE`` changes a decoding option
(``/set top-p 0.9``), ``/help`` lists them.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Iterator, Protocol

from rnnkit.errors import UserError
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.tasks.predict import PredictOptions, Predictor, predict_inputs, run_predict


@dataclass
class ChatDecodingOptions(CheckpointOptions):
    """Decoding options of a command; each left out is the run's."""

    strategy: str | None = None
    """beam (beam search; --beam-size 1 is greedy) or sample."""
    beam_size: int | None = None
    """beam: hypotheses kept."""
    temperature: float | None = None
    """sample: divide the logits by this."""
    top_k: int | None = None
    """sample: draw among the k most likely words (0: all)."""
    top_p: float | None = None
    """sample: draw within the nucleus of probability p (1: all)."""
    samples: int | None = None
    """sample: replies drawn per context, the best kept."""
    block_ngram: int | None = None
    """Never repeat an n-gram within a reply (0: allow)."""
    anti_lm: float | None = None
    """MMI-antiLM weight (0: off)."""
    sample_seed: int | None = None
    """sample: the random seed."""


@dataclass
class ChatPredictOptions(PredictOptions, ChatDecodingOptions):
    n_best: int = 1
    """Show this many best replies per context (at most the beam size, or --samples)."""


@dataclass
class ChatEvaluateOptions(ChatDecodingOptions):
    dialogues: str | None = None
    """Dialogues to evaluate on, in a training format (default: the run's test set, whole and unseen contexts)."""


@dataclass
class ChatOptions(ChatDecodingOptions):
    pass


class ChatPartner(Protocol):
    """What ``rnnkit chat`` and ``evaluate`` need from a chat session."""

    def decoding_with(self, options): ...

    def answer(self, contexts: list[list[str]], decoding, n_best: int = 1) -> list[dict]: ...


class ChatEvaluator(ChatPartner, Protocol):
    def labelled_set(self, dialogues: str | None): ...

    def final_metrics(self, test, decoding) -> dict: ...

    def report(self, metrics: dict, label: str) -> str: ...


def run_evaluate(session: ChatEvaluator, options: ChatEvaluateOptions) -> None:
    decoding = session.decoding_with(options)
    for name, metrics in session.final_metrics(session.labelled_set(options.dialogues), decoding).items():
        print(session.report(metrics, label=f"{name.replace('_', ' ')} ({metrics['examples']:,} replies)"))


def reply_events(session, text: str, options: ChatPredictOptions) -> Iterator[dict]:
    """``predict`` of one context as it is written (``rnnkit serve``'s stream): {"token": WORD} as each word of the
    reply is chosen, then {"output": RECORD}, the record ``predict --format jsonl`` prints for it."""
    if options.n_best != 1:
        raise UserError(f"--n-best: a streamed reply is one reply, got {options.n_best}")
    text, context = session.parse_input(text)
    for event in session.streamed_answer(context, session.decoding_with(options)):
        yield {"output": {"context": text, **event["output"]}} if "output" in event else event


HELP = ("/reset starts a new conversation; /quit ends it (so do Ctrl-D and Ctrl-C); /set NAME VALUE changes a "
        "decoding option: {names}")
CONVERSIONS = {"int": int, "float": float, "str": str}


def decoding_names(decoding) -> list[str]:
    return [field.name.replace("_", "-") for field in dataclasses.fields(decoding) if field.type in CONVERSIONS]


def set_option(decoding, command: str):
    """The decoding options after ``/set NAME VALUE``; UserError saying why not."""
    parts = command.split()
    names = decoding_names(decoding)
    if len(parts) != 3 or parts[1] not in names:
        raise UserError(f"usage: /set NAME VALUE, NAME one of {', '.join(names)}")
    field = next(field for field in dataclasses.fields(decoding) if field.name == parts[1].replace("-", "_"))
    try:
        value = CONVERSIONS[field.type](parts[2])
    except ValueError:
        raise UserError(f"/set {parts[1]}: expected a value of type {field.type}, got {parts[2]!r}") from None
    changed = dataclasses.replace(decoding, **{field.name: value})
    changed.validate()
    return changed


def read_message(prompt: str) -> str | None:
    """The next line of standard input (None at its end); the prompt only where a person types."""
    try:
        return input(prompt)
    except EOFError:
        if prompt:
            print()
        return None


def run_chat(session: ChatPartner, options: ChatOptions) -> None:
    """A conversation with the model: one message a line, one reply after each; Ctrl-C ends it as /quit does."""
    try:
        converse(session, options)
    except KeyboardInterrupt:
        print()


def converse(session: ChatPartner, options: ChatOptions) -> None:
    decoding = session.decoding_with(options)
    interactive = sys.stdin.isatty()
    sys.stdin.reconfigure(errors="surrogateescape")  # a line that is not UTF-8 is answered, not a traceback
    if interactive:
        import readline  # noqa: F401  (input() then has line editing and history)

        print(f"Talking to {options.checkpoint}. " + HELP.format(names=", ".join(decoding_names(decoding))))
    conversation: list[str] = []
    prompt = "you> " if interactive else ""
    while True:
        message = read_message(prompt)
        if message is None:
            return
        message = message.strip()
        if any("\udc80" <= character <= "\udcff" for character in message):
            print("(that line is not valid UTF-8; write it again)")
            continue
        if message in ("/quit", "/exit"):
            return
        if message == "/reset":
            conversation = []
            print("(a new conversation)")
            continue
        if message == "/help":
            print(HELP.format(names=", ".join(decoding_names(decoding))))
            continue
        if message.startswith("/set"):
            try:
                decoding = set_option(decoding, message)
                print(f"({message[5:].strip()})")
            except UserError as error:
                print(f"({error})")
            continue
        if message.startswith("/"):
            print(f"(unknown command {message.split()[0]}; /help lists them)")
            continue
        if not message:
            print("(an empty message gets no reply; write something)")
            continue
        conversation.append(message)
        answer = session.answer([conversation], decoding)[0]
        for key in ("warning", "notice"):
            if key in answer:
                print(f"({answer[key]})")
        print(f"bot> {answer['response']}")
        conversation.append(answer["response"])


CHAT = Command("a conversation with the model in the terminal (or from a pipe): one message a line", ChatOptions,
               run_chat, ChatPartner)
CHAT_PREDICT = Command("replies to contexts given as arguments or in a file (turns separated by ' __eou__ ')",
                       ChatPredictOptions, run_predict, Predictor, records=predict_inputs, stream=reply_events)
CHAT_EVALUATE = Command("perplexity, BLEU and distinct-n on --dialogues or on the run's test set", ChatEvaluateOptions,
                        run_evaluate, ChatEvaluator)
