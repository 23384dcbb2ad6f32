"""The recommend task: the interaction readers and the leave-one-out split on hand-written files, the ranking metrics
against hand-computed ranks, both evaluation protocols (they agree when every other item is a negative), each loss
against its formula written out, the self-attentive baseline's causality, and a tiny end-to-end run through the
command line on sequences with a rule to learn (item i is followed by item i + 1)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cli_helpers import assert_one_line_error, rnnkit_here
from rnnkit.data.interactions import (Catalogue, HeldOut, keep_frequent_items, leave_one_out, read_interactions,
                                      read_user_sequences, sampled_candidates)
from rnnkit.errors import UserError
from rnnkit.metrics import ranking_metrics, target_ranks
from rnnkit.models import ranking_losses
from rnnkit.models.recommender import Recommender, RecommenderConfig


# ----------------------------------------------------------------------------- reading and splitting
def test_pairs_in_file_order_and_timestamps_sorted_within_each_user(tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("u1 a\nu2 b\nu1 c\n\nu1 b\n")
    histories = read_interactions(pairs)
    assert histories.users == ["u1", "u2"] and histories.sequences == [["a", "c", "b"], ["b"]]
    timed = tmp_path / "timed.txt"
    timed.write_text("u1 a 30\nu1 b 10\nu1 c 20\nu1 d 10\n")  # ties keep the file's order
    assert read_interactions(timed).sequences == [["b", "d", "c", "a"]]


def test_csv_tsv_and_recbole_inter_files_name_their_columns(tmp_path):
    (tmp_path / "a.csv").write_text("timestamp,item_id,user_id,rating\n5,x,u,1\n1,y,u,1\n3,z,v,2\n")
    assert read_interactions(tmp_path / "a.csv").sequences == [["y", "x"], ["z"]]
    (tmp_path / "b.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\nu\tx\t1\t9\nu\ty\t1\t2\n")
    assert read_interactions(tmp_path / "b.inter").sequences == [["y", "x"]]
    (tmp_path / "c.tsv").write_text("user\titem\nu\tx\nu\ty\n")  # no timestamp: the file's order
    assert read_interactions(tmp_path / "c.tsv").sequences == [["x", "y"]]


def test_a_malformed_line_names_its_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("u1 a\nu1 b c d\n")
    with pytest.raises(UserError, match=r"bad.txt line 2: expected 'user item' or 'user item timestamp'"):
        read_interactions(bad)
    bad.write_text("u1 a 5\nu1 b yesterday\n")
    with pytest.raises(UserError, match=r"bad.txt line 2: the timestamp 'yesterday' is not a number"):
        read_interactions(bad)
    table = tmp_path / "bad.csv"
    table.write_text("who,what\nu,a\n")
    with pytest.raises(UserError, match=r"bad.csv line 1: expected a header naming the user and item columns"):
        read_interactions(table)
    table.write_text("user,item\nu,a\nu,b,7\n")
    with pytest.raises(UserError, match=r"bad.csv line 3: 3 fields where the header names 2"):
        read_interactions(table)


def test_user_sequences_and_the_item_count_filter(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("1 1 2 3\n2 4 2\n3 2\n")
    histories = read_user_sequences(path)
    assert histories.users == ["1", "2", "3"] and histories.sequences == [["1", "2", "3"], ["4", "2"], ["2"]]
    kept, dropped = keep_frequent_items(histories, 2)  # only item 2 occurs twice or more
    assert (kept.sequences, dropped) == ([["2"], ["2"], ["2"]], 3)


def test_leave_one_out_puts_each_item_where_the_papers_do(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("u a\nu b\nu c\nu d\nv e\nv a\nw b\nw e\nw f\n")
    histories = read_interactions(path)
    catalogue = Catalogue.of(histories)
    assert catalogue.items == ("a", "b", "c", "d", "e", "f")  # a=1 ... f=6
    split = leave_one_out(histories, catalogue)
    assert split.train == [[1, 2], [5, 1], [2]]  # v has 2 items: training only
    assert split.train_only == 1
    assert split.validation.users == [0, 2] and split.test.users == [0, 2]
    assert split.validation.histories == [[1, 2], [2]] and split.validation.targets == [3, 5]
    assert split.test.histories == [[1, 2, 3], [2, 5]] and split.test.targets == [4, 6]
    assert split.test.interacted == [[1, 2, 3, 4], [2, 5, 6]]


# ----------------------------------------------------------------------------- ranking and its metrics
def test_ranks_count_the_others_at_least_as_good_and_skip_the_excluded():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7],
                           [0.3, 0.3, 0.2, 0.1],
                           [0.5, 0.9, 0.8, 0.1]])
    targets = torch.tensor([2, 1, 0])
    assert target_ranks(scores, targets).tolist() == [2, 1, 2]  # row 1: a tie counts against the target
    excluded = torch.tensor([[False, True, False, False], [False, False, False, False], [False, True, True, False]])
    assert target_ranks(scores, targets, excluded).tolist() == [1, 1, 0]


def test_hit_rate_ndcg_and_mrr_by_hand():
    metrics = ranking_metrics(torch.tensor([0, 3, 7, 30]), cutoffs=(1, 5, 10))
    assert metrics["hr@1"] == 0.25 and metrics["hr@5"] == 0.5 and metrics["hr@10"] == 0.75
    assert metrics["ndcg@5"] == pytest.approx((1 + 1 / math.log2(5)) / 4)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / math.log2(5) + 1 / math.log2(9)) / 4)
    assert metrics["mrr"] == pytest.approx((1 + 1 / 4 + 1 / 8 + 1 / 31) / 4)


def _held_out(users: int = 40, items: int = 30, seed: int = 0) -> HeldOut:
    generator = torch.Generator().manual_seed(seed)
    held_out = HeldOut()
    for user in range(users):
        sequence = (torch.randperm(items, generator=generator)[: 3 + user % 6] + 1).tolist()
        held_out.users.append(user)
        held_out.histories.append(sequence[:-1])
        held_out.targets.append(sequence[-1])
        held_out.interacted.append(sequence)
    return held_out


def test_sampled_negatives_are_distinct_never_the_users_items_and_seeded():
    held_out = _held_out()
    candidates = sampled_candidates(held_out, 30, 20, seed=3, chunk=16)
    assert candidates.shape == (40, 21) and candidates[:, 0].tolist() == held_out.targets
    for row, interacted in zip(candidates.tolist(), held_out.interacted):
        negatives = row[1:]
        assert len(set(negatives)) == 20 and not set(negatives) & set(interacted) and 0 not in negatives
    assert torch.equal(candidates, sampled_candidates(held_out, 30, 20, seed=3, chunk=16))
    assert not torch.equal(candidates, sampled_candidates(held_out, 30, 20, seed=4, chunk=16))
    with pytest.raises(UserError, match="use the full ranking"):
        sampled_candidates(held_out, 30, 25, seed=3)  # a user of 8 items leaves 22 negatives


def test_with_every_other_item_a_negative_the_sampled_and_full_rankings_agree():
    from rnnkit.tasks.recommend.task import Ranking, protocol_ranks

    held_out, items = _held_out(), 30
    scores = torch.randn(40, items + 1).round(decimals=1)  # ties among the candidates too
    fewest = min(items - len(interacted) for interacted in held_out.interacted)
    candidates = sampled_candidates(held_out, items, fewest, seed=0)
    ranking = Ranking([torch.tensor(h) for h in held_out.histories], torch.tensor(held_out.targets),
                      [torch.tensor(h) for h in held_out.histories], candidates)
    ranks = protocol_ranks(ranking, [(list(range(40)), scores)])
    everyone = [i for i, interacted in enumerate(held_out.interacted) if items - len(interacted) == fewest]
    assert len(everyone) > 1  # the users for whom every item they never met was drawn
    assert ranks["sampled"][everyone].tolist() == ranks["full"][everyone].tolist()
    assert ranks["sampled"].float().mean() < ranks["full"].float().mean()  # the others met fewer negatives


# ----------------------------------------------------------------------------- losses
def test_each_sampled_loss_against_its_formula_written_out():
    torch.manual_seed(0)
    positive, negatives = torch.randn(3), torch.randn(3, 4)
    hits = torch.tensor([[False, True, False, False], [False] * 4, [False, False, False, True]])
    for p in range(3):
        kept = negatives[p][~hits[p]]
        weights = torch.exp(kept) / torch.exp(kept).sum()
        bpr = -torch.log((weights * torch.sigmoid(positive[p] - kept)).sum()) + 0.5 * (weights * kept ** 2).sum()
        top1 = (weights * (torch.sigmoid(kept - positive[p]) + torch.sigmoid(kept ** 2))).sum()
        bce = -torch.log(torch.sigmoid(positive[p])) - torch.log(1 - torch.sigmoid(kept)).sum()
        row = (positive[p : p + 1], negatives[p : p + 1], hits[p : p + 1])
        torch.testing.assert_close(ranking_losses.bpr_max(*row, regularisation=0.5), bpr)
        torch.testing.assert_close(ranking_losses.top1_max(*row), top1)
        torch.testing.assert_close(ranking_losses.bce(*row), bce)
        log_q = torch.tensor([0.3, -1.0, 0.2, 0.5])
        softmax = -(positive[p] - 0.1) + torch.logsumexp(
            torch.cat([(positive[p] - 0.1).view(1), (negatives[p] - log_q)[~hits[p]]]), 0)
        torch.testing.assert_close(ranking_losses.sampled_softmax(*row, torch.tensor([0.1]), log_q), softmax)


def test_sampled_softmax_with_every_item_a_negative_is_the_full_softmax():
    torch.manual_seed(0)
    scores, targets = torch.randn(5, 7), torch.tensor([0, 3, 6, 3, 2])
    items = torch.arange(7)
    hits = items.unsqueeze(0) == targets.unsqueeze(1)  # the target among the negatives: an accidental hit
    uniform = torch.full((7,), math.log(1 / 7))
    sampled = ranking_losses.sampled_softmax(scores.gather(1, targets.unsqueeze(1)).squeeze(1), scores, hits,
                                             uniform[targets], uniform)
    torch.testing.assert_close(sampled, ranking_losses.full_softmax(scores, targets))
    torch.testing.assert_close(sampled, F.cross_entropy(scores, targets))


@pytest.mark.parametrize("loss", ranking_losses.LOSS_NAMES)
def test_every_loss_trains_the_model_and_never_scores_padding(loss):
    torch.manual_seed(0)
    config = RecommenderConfig(cell="gru", hidden_size=8, embedding_size=8, loss=loss, negatives=5, bce_negatives=2)
    model = Recommender(12, config, torch.arange(13.0))
    inputs, targets = torch.randint(1, 13, (6, 3)), torch.randint(1, 13, (6, 3))
    targets[4:, 1] = 0  # padding is not a target
    queries, value, _ = model(inputs, lengths=torch.tensor([6, 4, 6]), targets=targets)
    value.backward()
    assert torch.isfinite(value) and model.embedding.weight.grad[1:].abs().sum() > 0
    assert model.scores(queries)[..., 0].eq(float("-inf")).all()
    assert model.draw(500).min() >= 1


def test_the_self_attentive_baseline_reads_no_later_item():
    torch.manual_seed(0)
    config = RecommenderConfig(architecture="sasrec", embedding_size=8, heads=2, num_layers=2, max_length=6)
    model = Recommender(10, config).eval()
    inputs = torch.randint(1, 11, (5, 2))
    changed = inputs.clone()
    changed[3:] = torch.randint(1, 11, (2, 2))
    with torch.no_grad():
        # the same items at the same distance from the end: the positions count back from the last item
        before, _, _ = model(inputs, lengths=torch.tensor([5, 5]))
        after, _, _ = model(changed, lengths=torch.tensor([5, 5]))
    torch.testing.assert_close(before[:3], after[:3])
    assert not torch.allclose(before[3:], after[3:])


# ----------------------------------------------------------------------------- end to end
def write_successor_sequences(path: Path, users: int = 160, items: int = 20, seed: int = 0) -> Path:
    """``user item`` lines: each user walks the items in order from a random start (item i, then i + 1, wrapping)."""
    generator = torch.Generator().manual_seed(seed)
    lines = []
    for user in range(users):
        start, length = torch.randint(0, items, (1,), generator=generator).item(), 4 + user % 5
        lines += [f"user{user} item{(start + step) % items + 1}" for step in range(length)]
    path.write_text("\n".join(lines) + "\n")
    return path


TINY_RUN = ["--hidden-size", "16", "--embedding-size", "16", "--batch-size", "16", "--max-minutes", "0",
            "--max-steps", "150", "--eval-every", "50", "--lr", "0.01", "--dropout", "0", "--sampled-negatives", "5",
            "--precision", "fp32"]


@pytest.fixture(scope="module")
def successor_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("recommend")
    run = folder / "run"
    result = rnnkit_here("train", "recommend", "--interactions", write_successor_sequences(folder / "walks.txt"),
                         *TINY_RUN, "--out", run)
    assert result.returncode == 0, result.stderr
    return run


def test_a_tiny_run_learns_the_successor_rule(successor_run):
    summary = json.loads((successor_run / "summary.json").read_text())
    assert summary["test"]["full_hr@1"] > 0.95  # held-out users' last items: the item after their second-to-last
    assert summary["baseline"]["full_hr@1"] < 0.2  # the popularity baseline cannot know it


def test_predict_answers_in_both_formats_with_item_ids(successor_run):
    text = rnnkit_here("predict", "--checkpoint", successor_run, "item3 item4 item5", "--top-k", "3")
    assert text.returncode == 0, text.stderr
    assert text.stdout.split()[0] == "item6"
    lines = rnnkit_here("predict", "--checkpoint", successor_run, "item3 item4 item5", "item19 item20", "--format",
                        "jsonl", "--top-k", "4")
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [record["items"][0] for record in records] == ["item6", "item1"]
    assert records[0]["history"] == ["item3", "item4", "item5"] and len(records[0]["items"]) == 4
    assert records[0]["scores"] == sorted(records[0]["scores"], reverse=True)
    seen = rnnkit_here("predict", "--checkpoint", successor_run, "item5 item6 item7 item8 item9 item10 item11",
                       "--top-k", "20", "--format", "jsonl")
    assert not {f"item{i}" for i in range(5, 12)} & set(json.loads(seen.stdout)["items"])  # seen items excluded
    included = rnnkit_here("predict", "--checkpoint", successor_run, "item5 item6 item7 item8 item9 item10 item11",
                           "--top-k", "20", "--format", "jsonl", "--include-seen")
    assert {f"item{i}" for i in range(5, 12)} <= set(json.loads(included.stdout)["items"])


def test_unknown_items_are_ignored_and_an_empty_history_gets_the_popular_items(successor_run):
    result = rnnkit_here("predict", "--checkpoint", successor_run, "nope item7 gone", "nope", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    assert "ignored 2 item(s) the model never saw in training: nope, gone" in result.stderr
    assert "1 history(ies) held no item the model knows" in result.stderr
    known, empty = map(json.loads, result.stdout.splitlines())
    assert known["history"] == ["item7"] and known["ignored"] == ["nope", "gone"] and known["items"][0] == "item8"
    assert empty["popular"] is True and empty["history"] == []
    assert_one_line_error(rnnkit_here("predict", "--checkpoint", successor_run, "item1", "--top-k", "21"),
                          "--top-k 21: the catalogue has 20 items")


def test_evaluate_reports_both_protocols(successor_run):
    result = rnnkit_here("evaluate", "--checkpoint", successor_run)
    assert result.returncode == 0, result.stderr
    summary = json.loads((successor_run / "summary.json").read_text())
    assert f"HR@10 {summary['test']['full_hr@10']:.4f}" in result.stdout
    assert "sampled: HR@1" in result.stdout and "full: HR@1" in result.stdout


def test_bad_input_to_training_is_one_line(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("u a\nu b\nv a\n")
    assert_one_line_error(rnnkit_here("train", "recommend", "--interactions", short, "--out", tmp_path / "run"),
                          "no user has 3 or more items")
    assert not (tmp_path / "run").exists()
    bad = tmp_path / "bad.txt"
    bad.write_text("u a\nu\n")
    assert_one_line_error(rnnkit_here("train", "recommend", "--interactions", bad, "--out", tmp_path / "run"),
                          "bad.txt line 2")
    assert_one_line_error(rnnkit_here("train", "recommend", "--loss", "hinge", "--out", tmp_path / "run"),
                          "--loss: expected one of full_softmax")
