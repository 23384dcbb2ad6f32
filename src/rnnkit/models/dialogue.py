"""The chatbot's models, by ``--structure``: one registry, each an encoder–decoder with the model contract.

    flat         the context joined into one sequence -> seq2seq.EncoderDecoder (translate's model)
    hred         the context utterance by utterance -> hred.HierarchicalEncoder -> the same decoder
    transformer  torch.nn.Transformer over the joined context (the non-recurrent baseline)

All read the same input (the context's words with speaker markers, ``rnnkit.data.dialogues``)
and write the reply the same way, so that one batching, one search and one predict serve them.

Replies are found (``find_replies``) by the one beam search (``--beam-size 1``: greedy) or by
sampling (top-k, nucleus, temperature), optionally never repeating an n-gram, and optionally
reranked against generic replies (MMI-antiLM, Li et al. 2016): the n-best are ranked by

    log p(T | S) - lambda * log p(T | <user>)

where p(T | <user>), the reply's probability after an empty message, stands for the language
model p(T) of Li et al.: the same network, no second model to train. lambda is ``--anti-lm``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import torch
from torch import nn

from rnnkit.errors import UserError
from rnnkit.models.hred import HierarchicalEncoder
from rnnkit.models.sampling import sample_outputs, sampling_steps
from rnnkit.models.search import DecodingConfig, Hypothesis, search_in_batches
from rnnkit.models.seq2seq import PAD, EncoderDecoder, Seq2SeqConfig
from rnnkit.models.transformer_seq2seq import TransformerEncoderDecoder


@dataclass
class ChatModelConfig(Seq2SeqConfig):
    structure: str = "flat"
    """flat (the context as one sequence, translate's encoder-decoder), hred (an utterance encoder and a context RNN;
    Serban et al. 2016) or transformer (torch.nn.Transformer: the baseline)."""
    heads: int = 4
    """transformer: attention heads (width --hidden-size, --num-layers in the encoder and in the decoder)."""
    feedforward_size: int = 1024
    """transformer: the width of each layer's feed-forward block."""

    def validate(self) -> None:
        super().validate()
        if self.structure not in STRUCTURES:
            raise UserError(f"--structure: expected one of {', '.join(STRUCTURES)}, got {self.structure!r}")
        if self.structure == "transformer" and (self.heads <= 0 or self.hidden_size % self.heads):
            raise UserError(f"--heads: the transformer splits --hidden-size ({self.hidden_size}) among its heads, so "
                            f"it must divide it; got {self.heads}")


def flat(vocab_size: int, config: ChatModelConfig, markers: tuple[int, ...]) -> nn.Module:
    return EncoderDecoder(vocab_size, vocab_size, config)


def hred(vocab_size: int, config: ChatModelConfig, markers: tuple[int, ...]) -> nn.Module:
    return EncoderDecoder(vocab_size, vocab_size, config, encoder=HierarchicalEncoder(vocab_size, config, markers))


def transformer(vocab_size: int, config: ChatModelConfig, markers: tuple[int, ...]) -> nn.Module:
    return TransformerEncoderDecoder(vocab_size, config.hidden_size, config.heads, config.num_layers,
                                     config.feedforward_size, config.dropout, config.label_smoothing)


STRUCTURES = {"flat": flat, "hred": hred, "transformer": transformer}


def build_chat_model(vocab_size: int, config: ChatModelConfig, markers: tuple[int, ...]) -> nn.Module:
    """The model of ``config.structure`` over a vocabulary of ``vocab_size`` words; ``markers``: the speaker markers'
    ids (where hred's utterances start)."""
    return STRUCTURES[config.structure](vocab_size, config, markers)


STRATEGIES = ("beam", "sample")
DECODING_BATCH = 128  # contexts per decoding batch (times the beam or the samples in rows)


@dataclass
class ChatDecodingConfig(DecodingConfig):
    """How replies are found (test metrics, ``rnnkit predict``, ``rnnkit chat``)."""

    strategy: str = "beam"
    """beam (beam search; --beam-size 1 is greedy decoding) or sample (drawn word by word)."""
    temperature: float = 1.0
    """sample: divide the logits by this (below 1: safer replies, above 1: more varied ones)."""
    top_k: int = 0
    """sample: draw among the k most likely words only (0: all)."""
    top_p: float = 1.0
    """sample: draw within the nucleus, the fewest most likely words whose probability reaches p (1: all)."""
    samples: int = 1
    """sample: replies drawn per context; the best-scored is kept."""
    block_ngram: int = 3
    """Never write the same n-gram twice in one reply (0: allow)."""
    anti_lm: float = 0.0
    """MMI-antiLM: rerank the n-best by log p(reply | context) - this x log p(reply | empty message) (0: off;
    Li et al. 2016 use about 0.5)."""
    sample_seed: int = 0
    """sample: the random seed (the same replies for the same inputs)."""

    def validate(self) -> None:
        super().validate()
        if self.strategy not in STRATEGIES:
            raise UserError(f"--strategy: expected one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.temperature <= 0:
            raise UserError(f"--temperature: expected a positive number, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise UserError(f"--top-p: expected a probability in (0, 1], got {self.top_p}")
        if self.top_k < 0 or self.samples <= 0 or self.block_ngram < 0 or self.anti_lm < 0:
            raise UserError("--top-k, --block-ngram, --anti-lm: expected values >= 0, and --samples >= 1")

    def kept(self) -> int:
        """Hypotheses found per context: the beam's or the samples."""
        return self.beam_size if self.strategy == "beam" else self.samples


def find_replies(model, sources: list[torch.Tensor], decoding: ChatDecodingConfig, *, begin: int, end: int,
                 never: tuple[int, ...], empty: torch.Tensor, n_best: int = 1) -> list[list[Hypothesis]]:
    """The ``n_best`` best replies to each context ``sources[i]`` (S_i,) as ``decoding`` finds them, best first;
    ``empty``: the context of an empty message (the anti-LM's)."""
    limit, options = decoding.max_lengths, {"begin": begin, "end": end, "never": never,
                                            "block_ngram": decoding.block_ngram, "penalty": decoding.penalised}
    if decoding.strategy == "beam":
        found = search_in_batches(model, sources, DECODING_BATCH, limit, beam_size=decoding.beam_size,
                                  n_best=decoding.beam_size, **options)
    else:
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(decoding.sample_seed)
        found = search_in_batches(model, sources, DECODING_BATCH, limit, search=sample_outputs,
                                  temperature=decoding.temperature, top_k=decoding.top_k, top_p=decoding.top_p,
                                  samples=decoding.samples, generator=generator, **options)
    if decoding.anti_lm > 0:
        found = rerank_anti_lm(model, found, decoding, begin, end, empty)
    return [hypotheses[:n_best] for hypotheses in found]


def why_not_streamed(decoding: ChatDecodingConfig) -> str | None:
    """Why a reply found as ``decoding`` says cannot be sent word by word as it is written, or None."""
    if decoding.strategy == "beam" and decoding.beam_size > 1:
        return "beam search knows its best reply only at its end; stream with --beam-size 1 (greedy) or strategy sample"
    if decoding.strategy == "sample" and decoding.samples > 1:
        return "of several samples the best is known only when all are drawn; stream with samples 1"
    if decoding.anti_lm > 0:
        return "the anti-LM reranks whole replies; stream with anti_lm 0"
    return None


def streamed_reply(model, source: torch.Tensor, decoding: ChatDecodingConfig, *, begin: int, end: int,
                   never: tuple[int, ...]) -> Generator[int, None, Hypothesis]:
    """The reply ``find_replies`` finds to one context (S,), word id by word id as each is chosen, then its
    hypothesis; for the decodings that choose one word at a time (``why_not_streamed``). Greedy decoding is the
    draw from the single most likely word, so one loop, ``sampling_steps``, writes both, as the searches would."""
    reason = why_not_streamed(decoding)
    if reason is not None:
        raise UserError(f"stream: {reason}")
    device = next(model.parameters()).device
    lengths = torch.tensor([source.numel()])
    greedy = decoding.strategy == "beam"
    generator = torch.Generator(device=device).manual_seed(decoding.sample_seed)
    steps = sampling_steps(model, source.view(-1, 1).to(device), lengths=lengths,
                           max_lengths=decoding.max_lengths(lengths).to(device), begin=begin, end=end, never=never,
                           temperature=1.0 if greedy else decoding.temperature, top_k=1 if greedy else decoding.top_k,
                           top_p=1.0 if greedy else decoding.top_p, block_ngram=decoding.block_ngram, samples=1,
                           penalty=decoding.penalised, generator=generator)
    while True:
        try:
            token = int(next(steps)[0])
        except StopIteration as finished:
            return finished.value[0][0]
        if token != end:
            yield token


def rerank_anti_lm(model, found: list[list[Hypothesis]], decoding: ChatDecodingConfig, begin: int, end: int,
                   empty: torch.Tensor) -> list[list[Hypothesis]]:
    """Each list of hypotheses scored again by log p(T | S) - anti_lm * log p(T | empty), length-penalised, best
    first."""
    replies = [hypothesis.tokens for hypotheses in found for hypothesis in hypotheses]
    generic = iter(reply_log_probs(model, empty, replies, begin, end))
    reranked = []
    for hypotheses in found:
        rescored = [Hypothesis(h.tokens, decoding.penalised(h.log_prob - decoding.anti_lm * next(generic),
                                                             len(h.tokens) + 1), h.log_prob, h.attention)
                    for h in hypotheses]
        reranked.append(sorted(rescored, key=lambda hypothesis: -hypothesis.score))
    return reranked


@torch.no_grad()
def reply_log_probs(model, source: torch.Tensor, replies: list[list[int]], begin: int, end: int) -> list[float]:
    """log p(reply, then <eos> | source) of each reply after one context ``source`` (S,), by teacher forcing."""
    device = next(model.parameters()).device
    scores = []
    for start in range(0, len(replies), DECODING_BATCH):
        chunk = replies[start : start + DECODING_BATCH]
        targets = torch.nn.utils.rnn.pad_sequence([torch.tensor([begin, *reply, end]) for reply in chunk],
                                                  padding_value=PAD).to(device)  # (T + 2, B)
        sources = source.view(-1, 1).expand(-1, len(chunk)).to(device)
        logits, _, _ = model(sources, None, lengths=torch.full((len(chunk),), source.numel()), targets=targets)
        written = targets[1:]
        log_probs = logits.float().log_softmax(-1).gather(-1, written.unsqueeze(-1)).squeeze(-1)  # (T + 1, B)
        scores += log_probs.masked_fill(written == PAD, 0.0).sum(0).tolist()
    return scores
