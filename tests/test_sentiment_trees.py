"""The Stanford Sentiment Treebank's tree reader against hand-written trees: every node's label and span, the
phrases it yields (distinct, SST-2 without the neutral ones), the escapes and the no-break space, malformed lines
named by file and line, and raw text tokenised into the trees' own tokens."""

from __future__ import annotations

import pytest

from rnnkit.data.sentiment_trees import Span, labelled_phrases, labelled_sentences, parse_tree, read_trees
from rnnkit.data.tokenization import treebank
from rnnkit.errors import UserError
from rnnkit.tasks.sst.task import tree_label

ROCK = "(3 (2 (2 The) (2 Rock)) (4 (3 (2 is) (4 good)) (2 .)))"


def test_every_node_has_its_label_and_the_leaves_below_it():
    tree = parse_tree(ROCK, "t line 1")
    assert tree.leaves == ["The", "Rock", "is", "good", "."]
    # pre-order: the root, then each node before its children
    assert tree.spans == [Span(3, 0, 5), Span(2, 0, 2), Span(2, 0, 1), Span(2, 1, 2), Span(4, 2, 5), Span(3, 2, 4),
                          Span(2, 2, 3), Span(4, 3, 4), Span(2, 4, 5)]
    assert tree.label == 3
    assert tree.phrases()[4] == (("is", "good", "."), 4) and len(tree.phrases()) == 9


def test_escapes_and_a_no_break_space_stay_inside_their_tokens():
    tree = parse_tree("(2 (2 -LRB-) (2 (3 8\u00a01\\/2) (2 (2 \\*) (2 -RRB-))))", "t line 1")
    assert tree.leaves == ["-LRB-", "8\u00a01\\/2", "\\*", "-RRB-"]


def test_raw_text_is_tokenised_into_the_trees_tokens():
    tree = parse_tree("(3 (2 (2 -LRB-) (2 Rock)) (3 (2 -RRB-) (3 (2 is) (3 (2 1\\/2) (3 (2 \\*) (2 fun))))))", "t line 1")
    assert treebank("(Rock) is 1/2 * fun") == tree.leaves


@pytest.mark.parametrize("line, message", [
    ("(2 (2 a)", "1 bracket(s) left open"),
    ("(2 (2 a)))", "a ')' closes no node"),
    ("(7 (2 a) (2 b))", "expected a label 0-4 after '(', got '7'"),
    ("(x a)", "expected a label 0-4 after '(', got 'x'"),
    ("(2 a b)", "the word 'b' follows another word"),
    ("(2 (2 a) b)", "the word 'b' follows another word or a child node"),
    ("(2 )", "a node with a label but no word or children"),
    ("(2 a) (2 b)", "text after the tree's last bracket"),
    ("word", "outside the tree's brackets"),
])
def test_a_malformed_line_is_one_error_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / "train.txt"
    path.write_text(f"{ROCK}\n{line}\n")
    with pytest.raises(UserError, match=f"{path} line 2: .*{message.replace('(', '[(]').replace(')', '[)]')}"):
        read_trees(path, "--data-dir")


def test_phrases_are_distinct_and_sst2_leaves_out_the_neutral_ones():
    trees = [parse_tree(ROCK, "t line 1"), parse_tree("(1 (2 The) (0 bore))", "t line 2"),
             parse_tree("(2 (2 The) (2 Rock))", "t line 3")]
    fine = labelled_phrases(trees, tree_label("fine"))
    # 9 + 3 + 3 nodes; "The" (2) is in all three trees, "Rock" (2) and "The Rock" (2) in two: 15 - 4 repeats
    assert len(fine) == 11 and [s.tokens for s in fine][:2] == [("The", "Rock", "is", "good", "."), ("The", "Rock")]
    assert all(s.text == " ".join(s.tokens) for s in fine)
    binary = labelled_phrases(trees, tree_label("binary"))
    assert sorted((s.text, s.label) for s in binary) == [
        ("The Rock is good .", "1"), ("The bore", "0"), ("bore", "0"), ("good", "1"), ("is good", "1"),
        ("is good .", "1")]
    assert [(s.text, s.label) for s in labelled_sentences(trees, tree_label("binary"))] == [
        ("The Rock is good .", "1"), ("The bore", "0")]  # the neutral third sentence is left out, as stsa.binary does
