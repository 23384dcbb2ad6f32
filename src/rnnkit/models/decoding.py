"""Writing a target with a trained encoder–decoder: greedy decoding and beam search, batched over sentences.

Both step the decoder one word at a time from ``<bos>`` until ``<eos>`` or a length limit
of ``max_length_ratio`` × source length + ``max_length_extra`` words (fairseq's max-len-a/b),
never choosing ``<pad>`` or ``<bos>``. A hypothesis is ranked by its log-probability under a
length penalty (``--length-penalty``), since a plain sum of log-probabilities favours short
outputs:

    none      log P(y)
    average   log P(y) / |y|                         (length normalisation)
    gnmt      log P(y) / ((5 + |y|) / 6)^alpha       (Wu et al. 2016, GNMT)

with |y| the words written, ``<eos>`` included. Beam search (as fairseq's) keeps the
``beam_size`` best unfinished hypotheses of each sentence; at each step it looks at the best
2 × beam_size extensions, finishes those among the first beam_size that end in ``<eos>`` and
continues with the best beam_size that do not. A sentence is done when beam_size hypotheses
have finished, or at its length limit, where its unfinished hypotheses finish as they are.
Greedy decoding takes the single best word at each step; it equals beam search with beam 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnkit.errors import UserError

LENGTH_PENALTIES = ("none", "average", "gnmt")


@dataclass
class DecodingConfig:
    """How translations are searched for (test metrics and ``rnnkit predict``)."""

    beam_size: int = 5
    """Hypotheses kept per sentence (1: greedy decoding)."""
    length_penalty: str = "gnmt"
    """How hypotheses of different lengths are ranked: none, average (log-probability per word) or gnmt."""
    alpha: float = 0.6
    """gnmt: the length penalty's exponent (0: none)."""
    max_length_ratio: float = 2.0
    """A translation has at most max-length-ratio x source words + max-length-extra words."""
    max_length_extra: int = 10
    """See --max-length-ratio."""
    replace_unknown: bool = False
    """Replace each <unk> written by the source word the attention weighs most (attention models)."""

    def validate(self) -> None:
        if self.beam_size <= 0:
            raise UserError(f"--beam-size: expected a positive integer, got {self.beam_size}")
        if self.length_penalty not in LENGTH_PENALTIES:
            raise UserError(f"--length-penalty: expected one of {', '.join(LENGTH_PENALTIES)}, got {self.length_penalty!r}")
        if self.alpha < 0 or self.max_length_ratio < 0 or self.max_length_extra < 0:
            raise UserError("--alpha, --max-length-ratio, --max-length-extra: expected values >= 0")
        if self.max_length_ratio == 0 and self.max_length_extra == 0:
            raise UserError("--max-length-ratio, --max-length-extra: both 0 would allow no word at all")

    def max_lengths(self, source_lengths: torch.Tensor) -> torch.Tensor:
        """(B,) the most words each sentence's translation may have, <eos> included (at least 1)."""
        limit = (self.max_length_ratio * source_lengths.float()).floor().long() + self.max_length_extra
        return limit.clamp(min=1)

    def penalised(self, log_prob: float, length: int) -> float:
        """The ranking score of a hypothesis of ``length`` words (``<eos>`` included) and log-probability ``log_prob``."""
        if self.length_penalty == "average":
            return log_prob / length
        if self.length_penalty == "gnmt":
            return log_prob / ((5 + length) / 6) ** self.alpha
        return log_prob


@dataclass
class Hypothesis:
    tokens: list[int]  # the words written, without <bos> and <eos>
    score: float  # the ranking score (length-penalised)
    log_prob: float  # log P(tokens, then <eos> if it ended with one)
    attention: torch.Tensor | None  # (steps, S): each written word's weights over the source (<eos>'s included)


@dataclass(frozen=True)
class Specials:
    begin: int  # <bos>: the first step's input
    end: int  # <eos>: a finished hypothesis
    never: tuple[int, ...]  # ids never written (<pad>, <bos>)


def _step_log_probs(model, tokens, state, specials: Specials):
    logits, state, weights = model.decoder.step(tokens, state)
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    log_probs[:, list(specials.never)] = float("-inf")
    return log_probs, state, weights


@torch.no_grad()
def greedy(model, source: torch.Tensor, lengths: torch.Tensor, config: DecodingConfig,
           specials: Specials) -> list[Hypothesis]:
    """The best next word at every step, for each sentence of the batch: source (S, B) ids, lengths (B,)."""
    batch = source.shape[1]
    state = model.encode(source, lengths)
    limits = config.max_lengths(lengths).to(source.device)
    tokens = torch.full((batch,), specials.begin, dtype=torch.long, device=source.device)
    written, weights_written = [], []
    log_prob = torch.zeros(batch, device=source.device)
    steps = torch.zeros(batch, dtype=torch.long, device=source.device)  # words written, <eos> included
    done = torch.zeros(batch, dtype=torch.bool, device=source.device)
    for t in range(int(limits.max())):
        log_probs, state, weights = _step_log_probs(model, tokens, state, specials)
        best_log_prob, tokens = log_probs.max(dim=-1)
        log_prob += torch.where(done, torch.zeros_like(best_log_prob), best_log_prob)
        steps += (~done).long()
        written.append(tokens)
        weights_written.append(weights)
        done |= (tokens == specials.end) | (t + 1 >= limits)
        if done.all():
            break
    written = torch.stack(written, dim=1).tolist()  # (B, steps)
    hypotheses = []
    for row in range(batch):
        length = int(steps[row])
        words = written[row][:length]
        ended = words[-1] == specials.end
        attention = None if weights_written[0] is None else torch.stack([w[row] for w in weights_written[:length]])
        hypotheses.append(Hypothesis(words[:-1] if ended else words, config.penalised(float(log_prob[row]), length),
                                     float(log_prob[row]), attention))
    return hypotheses


@torch.no_grad()
def beam_search(model, source: torch.Tensor, lengths: torch.Tensor, config: DecodingConfig, specials: Specials,
                n_best: int = 1) -> list[list[Hypothesis]]:
    """The ``n_best`` best hypotheses of each sentence (best first): source (S, B) ids, lengths (B,)."""
    batch, beam = source.shape[1], config.beam_size
    device = source.device
    state = model.encode(source, lengths).select(torch.arange(batch, device=device).repeat_interleave(beam))
    limits = config.max_lengths(lengths).to(device)
    scores = torch.full((batch, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis (<bos>) per sentence at first
    tokens = torch.full((batch * beam,), specials.begin, dtype=torch.long, device=device)
    history = torch.zeros(batch * beam, 0, dtype=torch.long, device=device)
    attention_history = None
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    rank = torch.arange(2 * beam, device=device)
    for t in range(int(limits.max())):
        log_probs, state, weights = _step_log_probs(model, tokens, state, specials)
        vocab = log_probs.shape[-1]
        if weights is not None:
            attention_history = weights.unsqueeze(1) if attention_history is None else torch.cat(
                [attention_history, weights.unsqueeze(1)], dim=1)  # (B*K, t+1, S), rows as ``history``
        candidates = (scores.unsqueeze(2) + log_probs.view(batch, beam, vocab)).view(batch, beam * vocab)
        top_scores, top = candidates.topk(min(2 * beam, beam * vocab), dim=1)  # best first
        from_beam, word = top // vocab, top % vocab
        ends = word == specials.end
        at_limit = (t + 1 >= limits).unsqueeze(1)
        in_first = rank[: top.shape[1]].unsqueeze(0) < beam
        finishing = in_first & (ends | at_limit) & ~done.unsqueeze(1) & torch.isfinite(top_scores)
        for sentence, position in finishing.nonzero().tolist():
            row = sentence * beam + int(from_beam[sentence, position])
            words = history[row].tolist() + ([] if ends[sentence, position] else [int(word[sentence, position])])
            log_prob = float(top_scores[sentence, position])
            attention = None if attention_history is None else attention_history[row]
            finished[sentence].append(Hypothesis(words, config.penalised(log_prob, t + 1), log_prob, attention))
        done |= at_limit.squeeze(1) | torch.tensor([len(found) >= beam for found in finished], device=device)
        if done.all():
            break
        alive_scores, keep = top_scores.masked_fill(ends, float("-inf")).topk(beam, dim=1)
        scores = alive_scores.masked_fill(done.unsqueeze(1), float("-inf"))
        rows = (torch.arange(batch, device=device).unsqueeze(1) * beam + from_beam.gather(1, keep)).view(-1)
        tokens = word.gather(1, keep).view(-1)
        state = state.select(rows, same_sources=True)  # rows move only among one sentence's hypotheses
        history = torch.cat([history[rows], tokens.unsqueeze(1)], dim=1)
        if attention_history is not None:
            attention_history = attention_history[rows]
    return [sorted(found, key=lambda hypothesis: -hypothesis.score)[:n_best] for found in finished]
