"""Every task's metrics, as pure functions of predictions and references: one place to read and test them.

What the field's libraries compute is theirs: scikit-learn's accuracy, macro-F1 and confusion
matrix, seqeval's entity-level precision, recall and F1 (the conlleval way), sacrebleu's BLEU
and chrF (imported where used: the ``tasks`` extra). The rest is written here:

    bits per unit     loss / ln 2                     (a language model's loss in nats per unit)
    perplexity        exp(loss)
    MSE, MAE          mean (ŷ - y)², mean |ŷ - y|     over every window, step and column
    coverage          fraction of actual values inside [lower, upper]
    frame accuracy    TP / (TP + FP + FN) over all frames (Bay et al. 2009; music)
    solved fraction   fraction of squared errors below a threshold (the adding problem)

and jiwer's word and character error rates (speech), and the COCO caption evaluation's BLEU-1..4 and
CIDEr-D (``pycocoevalcap``'s pure-Python scorers; captions).

A model's loss is its own (``rnnkit.models``); a metric that is also a loss (music's NLL per frame)
is the model's, reported under the metric's name.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from rnnkit.sequences import step_mask


# ----------------------------------------------------------------------------- language models
def bits_per_unit(loss: float) -> float:
    """Mean cross-entropy in nats per unit (a character) -> in bits."""
    return loss / math.log(2)


def perplexity(loss: float) -> float:
    """exp(mean cross-entropy in nats per unit)."""
    return math.exp(loss)


# ----------------------------------------------------------------------------- classification
def accuracy(predicted: torch.Tensor, actual: torch.Tensor) -> float:
    """Fraction of equal entries."""
    return float((predicted == actual).float().mean())


def classification_metrics(gold: list[int], predicted: list[int], classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 over ``classes`` classes (a class never predicted nor present scores 0)."""
    from sklearn.metrics import accuracy_score, f1_score  # [tasks] extra

    return {"accuracy": float(accuracy_score(gold, predicted)),
            "macro_f1": float(f1_score(gold, predicted, average="macro", labels=range(classes), zero_division=0))}


def confusion(gold: list[int], predicted: list[int], classes: int) -> list[list[int]]:
    """Counts (classes, classes): rows the true class, columns the predicted one."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(gold, predicted, labels=range(classes)).tolist()


def majority_share(labels: list[int]) -> float:
    """The accuracy of always answering the most frequent label: the baseline of a classifier."""
    counts = Counter(labels)
    return max(counts.values()) / sum(counts.values())


# ----------------------------------------------------------------------------- entities
def entity_metrics(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Micro precision, recall and F1 of the entities of BIO tag sequences, and each type's, by seqeval."""
    from seqeval.metrics import classification_report  # [tasks] extra

    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    overall = report["micro avg"]
    types = sorted(name for name in report if not name.endswith(" avg"))
    return {"f1": float(overall["f1-score"]), "precision": float(overall["precision"]), "recall": float(overall["recall"]),
            "per_type": {name: {"f1": float(report[name]["f1-score"]), "precision": float(report[name]["precision"]),
                                "recall": float(report[name]["recall"]), "support": int(report[name]["support"])}
                         for name in types}}


# ----------------------------------------------------------------------------- translation
def translation_metrics(written: list[str], references: list[str]) -> dict:
    """Corpus BLEU and chrF of sentences as the model writes them against one reference each, on text tokenised
    already (sacrebleu ``tokenize="none"``: "tokenised BLEU"), with BLEU's signature."""
    from sacrebleu.metrics import BLEU, CHRF  # [tasks] extra

    bleu, chrf = BLEU(tokenize="none", force=True), CHRF()  # force: tokenised on purpose, so no warning about it
    return {"bleu": bleu.corpus_score(written, [references]).score, "chrf": chrf.corpus_score(written, [references]).score,
            "bleu_signature": str(bleu.get_signature())}


# ----------------------------------------------------------------------------- dialogue
def distinct(responses: list[list[str]], n: int) -> float:
    """distinct-n (Li et al. 2016): distinct n-grams over all n-grams of every response together (0 if none)."""
    grams = [tuple(words[i : i + n]) for words in responses for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def sentence_bleu_mean(written: list[list[str]], references: list[list[str]], n: int) -> float:
    """NLTK's sentence BLEU-n (uniform weights over 1..n-grams) with Chen & Cherry's smoothing 7, averaged over the
    responses, one reference each: the computation behind the dialogue papers' BLEU-1/2 (PLATO's and PVGRU's
    evaluation code; a response NLTK cannot score, an empty one, counts 0 as theirs do)."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu  # [tasks] extra

    weights = tuple(1.0 / n if order < n else 0.0 for order in range(4))
    smoothing, scores = SmoothingFunction().method7, []
    for hypothesis, reference in zip(written, references):
        try:
            scores.append(sentence_bleu([reference], hypothesis, weights=weights, smoothing_function=smoothing))
        except ZeroDivisionError:
            scores.append(0.0)
    return sum(scores) / len(scores)


def dialogue_metrics(written: list[list[str]], references: list[list[str]]) -> dict:
    """What a chatbot's replies are measured by against one reference reply each (words): NLTK sentence BLEU-1/2
    (``sentence_bleu_mean``), sacrebleu's corpus BLEU on the same words, and distinct-1/2 of the replies."""
    corpus = translation_metrics([" ".join(words) for words in written], [" ".join(words) for words in references])
    return {"bleu1": sentence_bleu_mean(written, references, 1), "bleu2": sentence_bleu_mean(written, references, 2),
            "corpus_bleu": corpus["bleu"], "distinct1": distinct(written, 1), "distinct2": distinct(written, 2),
            "length": sum(len(words) for words in written) / len(written), "bleu_signature": corpus["bleu_signature"]}


# ----------------------------------------------------------------------------- captions
# What the COCO caption evaluation's PTBTokenizer removes before scoring (pycocoevalcap/tokenizer/ptbtokenizer.py).
CAPTION_PUNCTUATION = frozenset({"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":",
                                 "-", "--", "...", ";"})


def scored_words(words: list[str]) -> list[str]:
    """The words a caption is scored on: lower-case tokens, the COCO tokenizer's punctuation removed."""
    return [word for word in words if word not in CAPTION_PUNCTUATION]


def caption_metrics(written: list[list[str]], references: list[list[list[str]]]) -> dict:
    """BLEU-1..4 and CIDEr-D of each image's caption (words) against all of its references, by the COCO caption
    evaluation's scorers (``pycocoevalcap``: corpus BLEU with its closest-reference length; CIDEr-D with the
    document frequencies of these references, sigma 6, x10), and exact match: the share of captions equal to one
    of their references. All on ``scored_words``."""
    from pycocoevalcap.bleu.bleu import Bleu  # [tasks] extra
    from pycocoevalcap.cider.cider import Cider

    hypotheses = {row: [" ".join(scored_words(words))] for row, words in enumerate(written)}
    truths = {row: [" ".join(scored_words(words)) for words in ones] for row, ones in enumerate(references)}
    bleu, _ = Bleu(4).compute_score(truths, hypotheses, verbose=0)
    cider, _ = Cider().compute_score(truths, hypotheses)
    exact = exact_matches(written, references)
    return {**{f"bleu{order}": 100 * bleu[order - 1] for order in range(1, 5)}, "cider": 100 * float(cider),
            "exact_match": 100 * sum(exact) / len(exact)}


def exact_matches(written: list[list[str]], references: list[list[list[str]]]) -> list[bool]:
    """Whether each caption equals one of its references, on ``scored_words``."""
    return [scored_words(words) in [scored_words(one) for one in ones] for words, ones in zip(written, references)]


# ----------------------------------------------------------------------------- speech recognition
def speech_errors(references: list[str], written: list[str]) -> dict:
    """Word and character error rates by jiwer: (S + D + I) / N of a Levenshtein alignment, summed over the whole set
    (not a mean of utterances' rates), spaces counted as characters; and the fraction of utterances transcribed
    exactly (an isolated word's accuracy)."""
    import jiwer  # [tasks] extra

    words, characters = jiwer.process_words(references, written), jiwer.process_characters(references, written)
    exact = sum(reference == hypothesis for reference, hypothesis in zip(references, written))
    return {"wer": words.wer, "cer": characters.cer, "exact": exact / len(references),
            "words": words.hits + words.substitutions + words.deletions, "utterances": len(references)}


def utterance_errors(references: list[str], written: list[str], names: list[str]) -> list[dict]:
    """Each utterance's word errors, in order: its name, reference, transcript, S, D, I and WER."""
    import jiwer  # [tasks] extra

    found = []
    for name, reference, hypothesis in zip(names, references, written):
        words = jiwer.process_words(reference, hypothesis)
        found.append({"utterance": name, "reference": reference, "transcript": hypothesis,
                      "substitutions": words.substitutions, "deletions": words.deletions,
                      "insertions": words.insertions, "wer": words.wer})
    return found


# ----------------------------------------------------------------------------- forecasts
def forecast_errors(point: torch.Tensor, actual: torch.Tensor) -> dict[str, float]:
    """Mean squared and mean absolute error over every window, step and column."""
    difference = point.float() - actual.float()
    return {"mse": float(difference.square().mean()), "mae": float(difference.abs().mean())}


def coverage(actual: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> float:
    """The fraction of actual values inside [lower, upper]: 0.8 is right for an 80% interval."""
    return float(((actual >= lower) & (actual <= upper)).float().mean())


def central_quantiles(level: float) -> tuple[float, float]:
    """The quantiles bounding the central ``level`` interval: 0.8 -> (0.1, 0.9)."""
    return round((1 - level) / 2, 6), round(1 - (1 - level) / 2, 6)


# ----------------------------------------------------------------------------- piano rolls
def frame_agreement(predicted: torch.Tensor, actual: torch.Tensor, lengths: torch.Tensor) -> tuple[int, int]:
    """True positives, and false positives plus false negatives, of (T, B, K) on/off keys over the real steps."""
    mask = step_mask(lengths, actual.shape[0], actual.device).unsqueeze(-1)  # (T, B, 1)
    hits = int((predicted & actual & mask).sum())
    misses = int(((predicted ^ actual) & mask).sum())
    return hits, misses


def frame_accuracy(hits: int, misses: int) -> float:
    """TP / (TP + FP + FN), from the sums of ``frame_agreement`` over a data set."""
    return hits / max(hits + misses, 1)


def frequency_baseline_nll(frequencies: torch.Tensor, pieces: list[torch.Tensor]) -> float:
    """NLL per frame of ``pieces`` when every key is on with its fixed training frequency."""
    p = frequencies.clamp(1e-4, 1 - 1e-4)
    frames = torch.cat(pieces)  # (N, 88)
    log_likelihood = frames @ p.log() + (1 - frames) @ (1 - p).log()
    return float(-log_likelihood.mean())


# ----------------------------------------------------------------------------- memory tasks
def solved_fraction(predictions: torch.Tensor, targets: torch.Tensor, threshold: float) -> float:
    """The fraction of sequences whose squared error is below ``threshold``."""
    return float(((predictions - targets) ** 2 < threshold).float().mean())


def recall_metrics(logits: torch.Tensor, targets: torch.Tensor, recalled: int) -> dict[str, float]:
    """Of the last ``recalled`` steps of (T, B, C) logits against (T, B) targets: the fraction of symbols right and
    the fraction of sequences with every symbol right."""
    right = logits[-recalled:].argmax(-1) == targets[-recalled:]
    return {"symbol_accuracy": float(right.float().mean()), "sequences_recalled": float(right.all(0).float().mean())}


# ----------------------------------------------------------------------------- recommendation
RANK_CUTOFFS = (1, 5, 10, 20)


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """(U,) 0-based rank of each user's target among the candidates not ``excluded``: how many other candidates score
    at least as high (a tie counts against the target, so that a model scoring every item alike ranks it last).

    scores (U, C), targets (U,) columns of ``scores``, excluded (U, C) bool: candidates that do not compete."""
    target_scores = scores.gather(1, targets.unsqueeze(1))  # (U, 1)
    competing = scores >= target_scores
    if excluded is not None:
        competing &= ~excluded
    return competing.scatter(1, targets.unsqueeze(1), False).sum(1)  # the others at least as good


def ranking_metrics(ranks: torch.Tensor, cutoffs: tuple[int, ...] = RANK_CUTOFFS) -> dict[str, float]:
    """HR@K (the target in the top K), NDCG@K (1 / log2(rank + 2) in the top K, else 0: one relevant item) and MRR
    (1 / (rank + 1)), averaged over users, from 0-based ``ranks``."""
    ranks = ranks.double()
    metrics = {}
    for k in cutoffs:
        hit = ranks < k
        metrics[f"hr@{k}"] = float(hit.double().mean())
        metrics[f"ndcg@{k}"] = float((hit / torch.log2(ranks + 2)).mean())
    metrics["mrr"] = float((1 / (ranks + 1)).mean())
    return metrics
