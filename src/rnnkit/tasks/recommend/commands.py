"""The commands of recommendation runs: ``predict`` (the next items for a history) and ``evaluate`` (ranking metrics).

    rnnkit predict --checkpoint RUN "item1 item2 item3" [--file HISTORIES] [--top-k 10] [--include-seen]
                   [--format jsonl]
    rnnkit evaluate --checkpoint RUN [--split test|validation]

Each input is one history: item ids as in the data, oldest first, separated by spaces. Its
record is ``{"history", "items", "scores"}``: the known items read, then the top-k items, best
first, and their scores (the model's logits). The history's own items are not recommended
unless ``--include-seen``. Items the model never saw are ignored (the record's ``"ignored"``,
and one warning naming them); a history with no known item gets the most popular training
items (``"popular": true``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

import torch

from rnnkit.errors import UserError
from rnnkit.tasks.base import CheckpointOptions, Command
from rnnkit.tasks.predict import PredictOptions, Predictor, predict_inputs, print_results, timed_predictions


@dataclass
class RecommendPredictOptions(PredictOptions):
    top_k: int = 10
    """Items recommended per history."""
    include_seen: bool = False
    """Recommend items already in the history too."""

    def validate(self) -> None:
        super().validate()
        if self.top_k < 1:
            raise UserError(f"--top-k: expected a positive integer, got {self.top_k}")


def run_recommend(session: Predictor, options: RecommendPredictOptions) -> None:
    results, seconds = timed_predictions(session, options)
    ignored = list(dict.fromkeys(item for result in results for item in result.get("ignored", [])))
    if ignored:
        shown = ", ".join(ignored[:10]) + (f" and {len(ignored) - 10} more" if len(ignored) > 10 else "")
        print(f"recommend: ignored {len(ignored)} item(s) the model never saw in training: {shown}", file=sys.stderr)
    popular = sum(bool(result.get("popular")) for result in results)
    if popular:
        print(f"recommend: {popular} history(ies) held no item the model knows: answered with the most popular items",
              file=sys.stderr)
    print_results(session, results, options, seconds)


@dataclass
class RecommendEvaluateOptions(CheckpointOptions):
    split: str = "test"
    """The run's users' test items (the last of each) or validation items (the second-to-last)."""


class RankingEvaluator(Protocol):
    """What ``rnnkit evaluate`` needs from a recommendation session."""

    def held_out_ranking(self, split: str): ...

    def evaluate(self, model, ranking) -> dict: ...

    def report(self, metrics: dict, label: str) -> str: ...


def run_evaluate(session: RankingEvaluator, options: RecommendEvaluateOptions) -> None:
    """HR, NDCG and MRR of the run's test (or validation) items, in both protocols."""
    if options.split not in ("test", "validation"):
        raise UserError(f"--split: expected test or validation, got {options.split!r}")
    ranking = session.held_out_ranking(options.split)
    session.model.eval()
    with torch.no_grad():
        metrics = session.evaluate(session.model, ranking)
    print(session.report(metrics, label=options.split))
    cutoffs = sorted({int(name.split("@")[1]) for name in metrics if "@" in name})
    for protocol in ("sampled", "full"):
        print(f"  {protocol}: " + ", ".join(f"HR@{k} {metrics[f'{protocol}_hr@{k}']:.4f} NDCG@{k} "
                                          f"{metrics[f'{protocol}_ndcg@{k}']:.4f}" for k in cutoffs)
              + f", MRR {metrics[f'{protocol}_mrr']:.4f}")


PREDICT = Command("the next items for histories given as arguments or one per line of a file", RecommendPredictOptions,
                  run_recommend, Predictor, records=predict_inputs)
EVALUATE = Command("HR@K, NDCG@K and MRR on the run's test (or validation) items, sampled and full ranking",
                   RecommendEvaluateOptions, run_evaluate, RankingEvaluator)
