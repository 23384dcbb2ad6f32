"""``recommend``: next-item recommendation from a user's history (GRU4Rec-style), on Amazon Games, Beauty or your own data.

Data (``--dataset``): ``games`` (SASRec's ``Video.txt``: its paper's "Games"), ``beauty`` (S3-Rec's
``Beauty.txt``), or ``--interactions FILE`` (``rnnkit.data.interactions`` lists the formats),
with ``--min-item-count``. Split leave-one-out per user (``leave_one_out``): training reads
each user's items but the last two, predicting every next item (many-to-many); validation
predicts the second-to-last item from the items before it, test the last from all the others.
Histories are cut to the most recent ``--max-length`` items.

Evaluation ranks each held-out item two ways, both always computed (``rnnkit.metrics``):
- ``sampled`` (SASRec's): against ``--sampled-negatives`` items drawn uniformly, without
  repeats, from those the user never interacted with (none of their items, validation and
  test included), seeded by ``--evaluation-seed``: every model evaluated on the same data with
  the same seed meets the same negatives. Every user is evaluated (SASRec's code scores a
  random 10,000 of them).
- ``full`` (S3-Rec's): against every item, the history's items excluded (scored -inf;
  S3-Rec sets them to 0, RecBole to -inf).
A tie counts against the target. The validation metric followed is NDCG@10 of the dataset's
protocol (``--protocol``: sampled for games, full for beauty and your own data); the test
summary reports both, and the popularity baseline (training counts) beside them.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rnnkit.data.batch import Batch
from rnnkit.data.interactions import (Catalogue, HeldOut, Histories, keep_frequent_items, leave_one_out,
                                      read_interactions, read_user_sequences, sampled_candidates)
from rnnkit.data.sentence_batches import SentenceBatches, batches_by_length, collate
from rnnkit.errors import UserError
from rnnkit.layers import Recurrent
from rnnkit.metrics import ranking_metrics, target_ranks
from rnnkit.models.recommender import Recommender, RecommenderConfig
from rnnkit.tasks.base import RunConfig, Task
from rnnkit.tasks.recommend.commands import EVALUATE, PREDICT, RecommendPredictOptions
from rnnkit.train.config import TrainConfig
from rnnkit.train.distributed import Distributed
from rnnkit.train.session import Monitor, Session

SHARED = Path("../shared/data/recsys")
DATASETS = {"games": ("sasrec/Video.txt", "sampled"), "beauty": ("s3rec/Beauty.txt", "full")}  # file, protocol
PROTOCOLS = ("sampled", "full")
EVALUATION_BATCH = 512


@dataclass
class RecommendData:
    dataset: str = "games"
    """games (Amazon Video Games, SASRec's file) or beauty (Amazon Beauty, S3-Rec's); --interactions: your own."""
    data_dir: str | None = None
    """The folder holding sasrec/Video.txt and s3rec/Beauty.txt (default: ../shared/data/recsys)."""
    interactions: str | None = None
    """Your own interactions: 'user item [timestamp]' lines, a CSV/TSV with a header, or RecBole's .inter file."""
    min_item_count: int = 1
    """Drop items seen fewer times than this (one pass, as SASRec's preprocessing; 5 is usual)."""
    protocol: str = "auto"
    """The evaluation validation follows: sampled, full, or auto (sampled for games, full otherwise)."""
    sampled_negatives: int = 100
    """The sampled protocol's negatives per user (SASRec: 100)."""
    evaluation_seed: int = 0
    """Seed of the sampled protocol's negatives."""

    def validate(self) -> None:
        if self.dataset not in DATASETS:
            raise UserError(f"--dataset: expected one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.protocol not in (*PROTOCOLS, "auto"):
            raise UserError(f"--protocol: expected sampled, full or auto, got {self.protocol!r}")
        for name in ("min_item_count", "sampled_negatives"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(self, name)}")

    def source(self) -> str:
        """What is trained on: --interactions FILE says so, else the dataset."""
        return str(self.interactions) if self.interactions else self.dataset

    def followed_protocol(self) -> str:
        if self.protocol != "auto":
            return self.protocol
        return "full" if self.interactions else DATASETS[self.dataset][1]


@dataclass
class RecommendConfig(RunConfig):
    # sampled softmax over 1,024 negatives: 10x the actions a second of the full softmax on Games' 23,715 items, and
    # better within a budget; 128 units with dropout 0.5 over 64 with 0.2 or 0.5 (docs/benchmarks.md)
    model: RecommenderConfig = field(default_factory=lambda: RecommenderConfig(
        cell="gru", hidden_size=128, embedding_size=128, dropout=0.5, loss="sampled_softmax", negatives=1024))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=128, lr=1e-3, max_minutes=30.0, eval_every=500, keep_best=True, precision="fp32"))
    dataset: RecommendData = field(default_factory=RecommendData)


def read_histories(data: RecommendData) -> Histories:
    """Every user's items, as ``data`` names them."""
    if data.interactions:
        histories = read_interactions(data.interactions)
    else:
        folder = Path(data.data_dir) if data.data_dir else SHARED
        path = folder / DATASETS[data.dataset][0]
        if not path.is_file():
            raise UserError(f"--data-dir: {folder} has no {DATASETS[data.dataset][0]}; pass the folder holding "
                            "sasrec/Video.txt and s3rec/Beauty.txt, or your own file with --interactions")
        histories = read_interactions(path, "--data-dir") if data.dataset == "games" else read_user_sequences(path)
    if data.min_item_count > 1:
        histories, dropped = keep_frequent_items(histories, data.min_item_count)
        print(f"recommend: dropped {dropped:,} items seen fewer than {data.min_item_count} times", file=sys.stderr)
    return histories


@dataclass
class Ranking:
    """A held-out item per user, as the model reads the history before it."""

    histories: list[torch.Tensor]  # (L_i,) the most recent item indices
    targets: torch.Tensor  # (U,)
    seen: list[torch.Tensor]  # the whole history's items: not candidates of the full ranking
    sampled: torch.Tensor  # (U, 1 + negatives): the target, then the sampled protocol's negatives


class RecommendSession(Session):
    monitor = Monitor("ndcg@10", "max")
    unit = "action"

    def __init__(self, config: RecommendConfig, catalogue: Catalogue, popularity: torch.Tensor,
                 device: torch.device) -> None:
        self.config, self.catalogue, self.device = config, catalogue, device
        self.model = Recommender(len(catalogue), config.model, popularity).to(device)
        self.batches = None
        self.splits: dict[str, Ranking] = {}

    def task_state(self) -> dict:
        return {"items": list(self.catalogue.items)}  # the popularity is the model's buffer

    def units_in(self, batch: Batch) -> int:
        return int(batch.lengths.sum())  # actions predicted

    def loss_terms(self, batch: Batch) -> int:
        return int(batch.lengths.sum())

    def recent(self, items: list[int]) -> torch.Tensor:
        return torch.tensor(items[-self.config.model.max_length :])

    def ranking(self, held_out: HeldOut) -> Ranking:
        data = self.config.dataset
        return Ranking([self.recent(history) for history in held_out.histories], torch.tensor(held_out.targets),
                       [torch.tensor(history) for history in held_out.histories],
                       sampled_candidates(held_out, len(self.catalogue), data.sampled_negatives, data.evaluation_seed))

    # ----------------------------------------------------------------- evaluation
    def next_item_scores(self, model, histories: list[torch.Tensor]):
        """(indices, (B, N + 1) scores of every item after each history) for batches of ``histories``, shortest first."""
        for indices, batch in batches_by_length(histories, None, EVALUATION_BATCH):
            queries, _, _ = model(batch.inputs.to(self.device), lengths=batch.lengths)
            last = queries[batch.lengths.to(self.device) - 1, torch.arange(batch.size, device=self.device)]  # (B, E)
            yield indices, model.scores(last).float().cpu()

    def metrics(self, ranks: dict[str, torch.Tensor]) -> dict[str, float]:
        """Both protocols' metrics (``sampled_hr@10``, ``full_mrr``, ...), and the followed protocol's unprefixed."""
        metrics = {f"{protocol}_{name}": value for protocol in PROTOCOLS
                   for name, value in ranking_metrics(ranks[protocol]).items()}
        followed = self.config.dataset.followed_protocol()
        return {**ranking_metrics(ranks[followed]), **metrics}

    def evaluate(self, model, ranking: Ranking | None = None) -> dict:
        """The ranking metrics of ``ranking`` (default: the validation split)."""
        ranking = ranking or self.splits["validation"]
        return self.metrics(protocol_ranks(ranking, self.next_item_scores(model, ranking.histories)))

    def popularity_metrics(self, ranking: Ranking) -> dict:
        """The popularity baseline's metrics: every history scores each item by its training count."""
        popularity = self.model.popularity.float().cpu()
        batches = [users.tolist() for users in torch.arange(len(ranking.targets)).split(EVALUATION_BATCH)]
        scored = ((users, popularity.expand(len(users), -1)) for users in batches)
        return self.metrics(protocol_ranks(ranking, scored))

    def report(self, metrics: dict, label: str = "validation") -> str:
        followed = self.config.dataset.followed_protocol()
        other = next(protocol for protocol in PROTOCOLS if protocol != followed)
        return (f"{label} {followed}: HR@10 {metrics['hr@10']:.4f}, NDCG@10 {metrics['ndcg@10']:.4f}, MRR "
                f"{metrics['mrr']:.4f}; {other}: HR@10 {metrics[f'{other}_hr@10']:.4f}, NDCG@10 "
                f"{metrics[f'{other}_ndcg@10']:.4f}")

    def test_summary(self) -> dict:
        if "test" not in self.splits:
            return {}
        self.model.eval()
        with torch.no_grad():
            test = self.evaluate(self.model, self.splits["test"])
        return {"test": test, "baseline": {"what": "popularity: training counts",
                                           **self.popularity_metrics(self.splits["test"])}}

    def held_out_ranking(self, split: str) -> Ranking:
        """``rnnkit evaluate``'s users: the run's ``split`` (read again when restored)."""
        if split not in self.splits:
            histories = read_histories(self.config.dataset)
            self.splits[split] = self.ranking(getattr(leave_one_out(histories, self.catalogue), split))
        return self.splits[split]

    # ----------------------------------------------------------------- rnnkit predict (rnnkit.tasks.predict.Predictor)
    def parse_input(self, text: str) -> tuple[list[str], list[str]]:
        """(the known items of a history, in order; those the model never saw)."""
        index = self.catalogue.index
        items = text.split()
        return [item for item in items if item in index], [item for item in items if item not in index]

    def input_length(self, parsed: tuple[list[str], list[str]]) -> int:
        return len(parsed[0])

    def predict(self, inputs: list[tuple[list[str], list[str]]], options: RecommendPredictOptions) -> list[dict]:
        if options.top_k > len(self.catalogue):
            raise UserError(f"--top-k {options.top_k}: the catalogue has {len(self.catalogue)} items; ask for at most "
                            "that many")
        self.model.eval()
        known = [self.recent(self.catalogue.indices(items)) for items, _ in inputs if items]
        scores = torch.empty(len(known), len(self.catalogue) + 1)
        with torch.no_grad():
            for indices, batch_scores in self.next_item_scores(self.model, known) if known else ():
                scores[indices] = batch_scores
        popularity = self.model.popularity.float().cpu().clone()
        popularity[0] = float("-inf")
        records, row = [], 0
        for items, unknown in inputs:
            scored = popularity.clone() if not items else scores[row].clone()
            row += bool(items)
            if not options.include_seen and items:
                scored[self.catalogue.indices(items)] = float("-inf")
            top = scored.topk(options.top_k)
            kept = top.values > float("-inf")  # fewer than --top-k where the history holds nearly every item
            record = {"history": items, "items": self.catalogue.ids(top.indices[kept]), "scores": top.values[kept].tolist()}
            if not items:
                record["popular"] = True  # no item the model knows: the most popular training items
            if unknown:
                record["ignored"] = unknown
            records.append(record)
        return records

    def describe(self, result: dict) -> str:
        answer = " ".join(result["items"])
        return f"{answer}\t(most popular: no known item in the history)" if result.get("popular") else answer

    # ----------------------------------------------------------------- rnnkit inspect (rnnkit.inspect.source.Inspectable)
    def recurrent_layers(self) -> Recurrent:
        if not hasattr(self.model.encoder, "rnn"):
            raise UserError("this run's recommender is SASRec's self-attention (--architecture sasrec): it has no "
                            "recurrent layers to inspect")
        return self.model.encoder.rnn

    def inspection_batch(self, size: int, length: int | None = None) -> Batch:
        """The first ``size`` validation histories (read again when restored), padded, with their next items."""
        ranking = self.held_out_ranking("validation")
        histories, targets = ranking.histories[:size], ranking.targets[:size]
        return collate(histories, [torch.cat([items[1:], target.view(1)]) for items, target in zip(histories, targets)])

    def step_labels(self, batch: Batch) -> None:
        return None


def protocol_ranks(ranking: Ranking, scored) -> dict[str, torch.Tensor]:
    """Each protocol's (U,) ranks of the targets, from ``scored``: (user indices, their (B, N + 1) scores) batches.
    Full: every item but padding and the history's; sampled: the target's column and its negatives'."""
    ranks = {protocol: torch.empty(len(ranking.targets), dtype=torch.long) for protocol in PROTOCOLS}
    for indices, scores in scored:
        rows = torch.tensor(indices)
        seen = torch.zeros(scores.shape, dtype=torch.bool)
        for row, index in enumerate(indices):
            seen[row, ranking.seen[index]] = True
        seen[:, 0] = True  # padding
        ranks["full"][rows] = target_ranks(scores, ranking.targets[rows], seen)
        ranks["sampled"][rows] = target_ranks(scores.gather(1, ranking.sampled[rows]), torch.zeros_like(rows))
    return ranks


def training_sequences(train: list[list[int]], max_length: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(inputs, targets) of every training history of 2 or more items: each item predicts the next, over the most
    recent ``max_length`` of them."""
    inputs, targets = [], []
    for items in train:
        if len(items) >= 2:
            inputs.append(torch.tensor(items[:-1][-max_length:]))
            targets.append(torch.tensor(items[1:][-max_length:]))
    return inputs, targets


def training_popularity(train: list[list[int]], items: int) -> torch.Tensor:
    """(N + 1,) how often each item occurs in training (index 0, padding: 0)."""
    counts = Counter(item for sequence in train for item in sequence)
    popularity = torch.zeros(items + 1)
    popularity[list(counts)] = torch.tensor(list(counts.values()), dtype=torch.float)
    return popularity


class RecommendTask(Task):
    name = "recommend"
    summary = "next-item recommendation (GRU4Rec-style, against SASRec): Amazon Games, Beauty or your own interactions"
    config_class = RecommendConfig
    session_class = RecommendSession
    commands = {"evaluate": EVALUATE, "predict": PREDICT}

    def start(self, config: RecommendConfig, context: Distributed, device: torch.device) -> RecommendSession:
        histories = read_histories(config.dataset)
        catalogue = Catalogue.of(histories)
        split = leave_one_out(histories, catalogue)
        session = RecommendSession(config, catalogue, training_popularity(split.train, len(catalogue)), device)
        if not split.validation.targets:
            raise UserError(f"{config.dataset.source()}: no user has 3 or more items, so none has a validation and a "
                            "test item (leave-one-out)")
        session.splits = {"validation": session.ranking(split.validation), "test": session.ranking(split.test)}
        inputs, targets = training_sequences(split.train, config.model.max_length)
        if len(inputs) < config.train.batch_size * context.world_size:
            raise UserError(f"--batch-size: {len(inputs)} training histories cannot fill a batch of "
                            f"{config.train.batch_size} x {context.world_size} processes; lower --batch-size")
        session.batches = SentenceBatches(inputs, targets, config.train.batch_size, config.train.seed, context.rank,
                                          context.world_size)
        if split.train_only:
            print(f"recommend: {split.train_only:,} users with fewer than 3 items are not evaluated (their items only "
                  "train, as SASRec's)", file=sys.stderr)
        print(f"recommend: {config.dataset.source()}: {len(histories):,} users, {len(catalogue):,} items, "
              f"{histories.actions():,} actions; {len(inputs):,} training histories, "
              f"{len(split.validation.targets):,} users evaluated", file=sys.stderr)
        return session

    def restore(self, config: RecommendConfig, task_state: dict, device: torch.device) -> RecommendSession:
        catalogue = Catalogue(tuple(task_state["items"]))
        return RecommendSession(config, catalogue, None, device)
