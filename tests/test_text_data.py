"""The text tasks' readers on small hand-written samples (malformed ones included), the tokenizer, the
vocabulary and token features, pretrained vectors, and the sentence batches."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from rnnkit.data.conll import check_tags, detect_scheme, read_conll
from rnnkit.data.embeddings import read_vectors
from rnnkit.data.labelled_sentences import check_labels, label_set, read_labelled_sentences
from rnnkit.data.sentence_batches import SentenceBatches, batches_by_length
from rnnkit.data.token_features import CASES, TokenFeatures, case_class, pad_sentences
from rnnkit.data.tokenization import treebank
from rnnkit.data.vocabulary import TokenVocabulary
from rnnkit.errors import UserError


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# ----------------------------------------------------------------------------- labelled sentences
def test_label_first_lines_and_csv_tsv_tables_read_alike(tmp_path):
    plain = read_labelled_sentences(write(tmp_path / "a.txt", "1 a fine film\n0 dull , dull .\n"), "--train")
    csv = read_labelled_sentences(write(tmp_path / "a.csv", 'sentence,label\n"a fine film",1\n"dull , dull .",0\n'), "--train")
    tsv = read_labelled_sentences(write(tmp_path / "a.tsv", "label\tsentence\n1\ta fine film\n0\tdull , dull .\n"), "--train")
    for sentences in (plain, csv, tsv):
        assert [(s.text, s.label) for s in sentences] == [("a fine film", "1"), ("dull , dull .", "0")]
    assert csv[1].where.endswith("a.csv line 3")
    assert label_set(plain) == ("0", "1")
    assert label_set(read_labelled_sentences(write(tmp_path / "b.txt", "10 x\n9 y\n-1 z\n"), "--train")) == ("-1", "9", "10")


@pytest.mark.parametrize(("name", "content", "fragments"), [
    ("empty-line.txt", "1 good\n\n0 bad\n", ["empty-line.txt line 2", "empty"]),
    ("no-sentence.txt", "1 good\n0\n", ["no-sentence.txt line 2", "no sentence"]),
    ("columns.csv", "sentence,label\ngood,1\nbad,0,extra\n", ["columns.csv line 3", "expected 2 columns"]),
    ("header.csv", "text,class\ngood,1\n", ["header.csv line 1", "'label'"]),
    ("empty-text.tsv", "sentence\tlabel\n\t1\n", ["empty-text.tsv line 2", "sentence is empty"]),
])
def test_malformed_lines_name_the_file_and_line(tmp_path, name, content, fragments):
    with pytest.raises(UserError) as error:
        read_labelled_sentences(write(tmp_path / name, content), "--train")
    for fragment in fragments:
        assert fragment in str(error.value)


def test_a_label_outside_the_training_labels_and_a_file_not_utf8_are_refused(tmp_path):
    dev = read_labelled_sentences(write(tmp_path / "dev.txt", "1 good\n7 odd\n"), "--dev")
    with pytest.raises(UserError, match="dev.txt line 2: label '7' does not occur in the training split"):
        check_labels(dev, ("0", "1"), "dev")
    with pytest.raises(UserError, match="not valid UTF-8"):
        read_labelled_sentences(write(tmp_path / "latin.txt", "1 café\n", "latin-1"), "--train")


# ----------------------------------------------------------------------------- tokenisation and features
def test_treebank_tokenizer_splits_raw_text_as_the_sst_files_are_split():
    raw = 'A gripping (really) film -- "Wow", it\'s the writer/director\'s best. Won\'t stop'
    assert [t.lower() for t in treebank(raw)] == [
        "a", "gripping", "-lrb-", "really", "-rrb-", "film", "--", "``", "wow", "''", ",", "it", "'s", "the",
        "writer\\/director", "'s", "best.", "wo", "n't", "stop"]
    tokenised = "they wo n't sit still , however `` entertainingly '' presented -lrb- yes -rrb- ..."
    assert treebank(tokenised) == tokenised.split()  # the SST files' own tokens stay as they are


def test_vocabulary_keeps_frequent_tokens_after_pad_and_unk():
    vocabulary = TokenVocabulary.from_counts(Counter("a a a b b c".split()), min_count=2)
    assert vocabulary.tokens == ("<pad>", "<unk>", "a", "b")
    assert vocabulary.encode(["b", "c", "zzz"]) == [3, 1, 1]
    assert TokenVocabulary.from_state(vocabulary.to_state()) == vocabulary


def test_token_features_lay_out_word_case_and_characters():
    words = TokenVocabulary(("<pad>", "<unk>", "eu", "rejects"))
    characters = TokenVocabulary(("<pad>", "<unk>", "E", "U", "r", "e"))
    features = TokenFeatures(words, lowercase=True, characters=characters, case=True)
    encoded = features.encode(["EU", "rejects", "Ab1"])
    assert encoded[:, 0].tolist() == [2, 3, 1]
    assert encoded[:, 1].tolist() == [CASES.index("upper"), CASES.index("lower"), CASES.index("has_digit")]
    assert encoded[0, 2:].tolist() == [2, 3, 0, 0, 0, 0, 0]  # E U, padded to the longest word (7 characters)
    assert encoded[1, 2:].tolist() == [4, 5, 1, 5, 1, 1, 1]  # r e j e c t s: characters not kept read as <unk>
    assert TokenFeatures.from_state(features.to_state()) == features
    assert [case_class(t) for t in ("Peter", "1996", "McDonald")] == [CASES.index(c) for c in ("title", "digits", "other")]
    padded, lengths = pad_sentences([encoded, features.encode(["eu"])])
    assert padded.shape == (3, 2, 9) and lengths.tolist() == [3, 1] and int(padded[1:, 1].abs().sum()) == 0


def test_zero_digits_shares_numbers_words_but_characters_keep_the_digits():
    sentences = [["In", "1996", "and", "2003"], ["A1", "B2"]]
    features = TokenFeatures.from_training(sentences, lowercase=True, min_count=1, characters=True, case=False,
                                           zero_digits=True)
    assert "0000" in features.words.tokens and "1996" not in features.words.tokens and "a0" in features.words.tokens
    encoded = features.encode(["1984", "2003", "c3"])
    assert encoded[0, 0] == encoded[1, 0] == features.words.index["0000"] and encoded[2, 0] == 1
    assert features.characters.decode(encoded[0, 1:].tolist()) == ["1", "9", "<unk>", "<unk>"]  # 8, 4 unseen
    assert TokenFeatures.from_state(features.to_state()) == features
    old = features.to_state()
    del old["zero_digits"]  # a run saved before the option
    assert TokenFeatures.from_state(old).zero_digits is False
    plain = TokenFeatures.from_training(sentences, lowercase=True, min_count=1, characters=False, case=False)
    assert "1996" in plain.words.tokens and "0000" not in plain.words.tokens


# ----------------------------------------------------------------------------- pretrained vectors
def test_vectors_match_exactly_then_lower_cased_and_report_coverage(tmp_path):
    glove = write(tmp_path / "glove.txt", "the 1 2\nfilm 3 4\nBad 5 6\nbad 7 8\nzebra 9 9\n")
    vectors = read_vectors(glove, {"<pad>": 0, "<unk>": 1, "the": 2, "Film": 3, "bad": 4}, width=2)
    assert {i: v.tolist() for i, v in vectors.rows.items()} == {2: [1, 2], 3: [3, 4], 4: [7, 8]}
    assert vectors.coverage(5) == "3 of 5 words (60.0%)"
    word2vec = write(tmp_path / "w2v.txt", "2 2\nthe 1 2\nfilm 3 4\n")
    assert sorted(read_vectors(word2vec, {"the": 0}, width=2).rows) == [0]


def test_vectors_of_the_wrong_width_name_the_line_and_the_option(tmp_path):
    glove = write(tmp_path / "glove.txt", "the 1 2\nfilm 3 4 5\n")
    with pytest.raises(UserError, match=r"glove.txt line 2: expected a word and 2 numbers \(--embedding-size\), got 3"):
        read_vectors(glove, {"the": 0}, width=2)
    with pytest.raises(UserError, match="have 3 dimensions but --embedding-size is 2"):
        read_vectors(write(tmp_path / "w.txt", "1 3\nthe 1 2 3\n"), {"the": 0}, width=2)


# ----------------------------------------------------------------------------- CoNLL
CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER
"""


def test_conll_sentences_skip_document_starts_and_detect_the_scheme(tmp_path):
    sentences = read_conll(write(tmp_path / "train.txt", CONLL), tag_column=-1, option="--train")
    assert [s.tokens for s in sentences] == [["EU", "rejects", "German"], ["Peter", "Blackburn"]]
    assert [s.tags for s in sentences] == [["I-ORG", "O", "I-MISC"], ["I-PER", "I-PER"]]
    assert sentences[1].where.endswith("train.txt line 7")
    assert detect_scheme(sentences) == "iob1"
    bio = read_conll(write(tmp_path / "bio.txt", CONLL.replace("I-ORG", "B-ORG").replace("I-MISC", "B-MISC")
                           .replace("NNP B-NP I-PER\nBlackburn", "NNP B-NP B-PER\nBlackburn")), -1, "--train")
    assert detect_scheme(bio) == "bio"
    assert read_conll(tmp_path / "train.txt", tag_column=2, option="--train")[0].tags == ["B-NP", "B-VP", "B-NP"]


@pytest.mark.parametrize(("content", "fragments"), [
    (CONLL.replace("rejects VBZ B-VP O", "rejects VBZ O"), ["line 4", "expected 4 columns", "got 3"]),
    (CONLL.replace("I-MISC", "X-MISC"), ["line 5", "'X-MISC'", "IOB1"]),
])
def test_malformed_conll_lines_name_the_file_and_line(tmp_path, content, fragments):
    with pytest.raises(UserError) as error:
        sentences = read_conll(write(tmp_path / "bad.txt", content), tag_column=-1, option="--train")
        check_tags(sentences, "iob1")
    for fragment in ["bad.txt", *fragments]:
        assert fragment in str(error.value)


# ----------------------------------------------------------------------------- batches
def _sentences(lengths):
    return [torch.full((length, 1), length) for length in lengths], [torch.tensor(i) for i in range(len(lengths))]


def test_sentence_batches_cover_each_epoch_once_pad_to_their_own_longest_and_resume():
    sentences, targets = _sentences([3, 9, 1, 4, 4, 7, 2, 8, 5, 6, 2, 3])
    batches = SentenceBatches(sentences, targets, batch_size=4, seed=0)
    epoch = [batches.next_batch() for _ in range(3)]
    assert sorted(int(t) for batch in epoch for t in batch.targets) == list(range(12))
    for batch in epoch:
        assert batch.inputs.shape[0] == int(batch.lengths.max())
        assert (batch.inputs[0, :, 0] == batch.lengths).all()  # each row's values are its length: rows stay whole
    saved = batches.state_dict()
    following = batches.next_batch()
    resumed = SentenceBatches(sentences, targets, batch_size=4, seed=0)
    resumed.load_state_dict(saved)
    assert torch.equal(resumed.next_batch().targets, following.targets)


def test_batches_by_length_cover_every_sentence_shortest_first():
    sentences, targets = _sentences([5, 1, 3, 2, 4])
    seen = [(indices, batch.lengths.tolist()) for indices, batch in batches_by_length(sentences, targets, 2)]
    assert seen == [([1, 3], [1, 2]), ([2, 4], [3, 4]), ([0], [5])]
