"""The speech task: the front end against a NumPy reference written from Sphinx's C code, the .mfc reader, audio
reading, CTC decoding against enumeration, the n-gram models, error rates by hand, the acoustic model's batching,
and a tiny end-to-end run on synthetic tone "speech" through the command line."""

from __future__ import annotations

import itertools
import json
import math
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import assert_one_line_error, rnnkit_here, tree_digest
from rnnkit.data.audio import read_audio, read_mfc, write_mfc
from rnnkit.data.speech_corpora import digit_strings, hold_out_speakers, read_an4, read_fsdd, read_manifest
from rnnkit.data.speech_features import FrontEnd, Pipeline, deltas, spec_augment, stack_frames
from rnnkit.data.vocabulary import CharVocabulary
from rnnkit.errors import UserError
from rnnkit.metrics import speech_errors, utterance_errors
from rnnkit.models.acoustic_model import AcousticModel, AcousticModelConfig
from rnnkit.models.ctc_decoding import PrefixScorer, collapse, greedy, prefix_beam_search
from rnnkit.models.word_ngram import END, ArpaModel, CountedNGram
from rnnkit.tasks.speech.commands import DecodingOptions
from rnnkit.tasks.speech.task import CTCDecoding, fits_ctc

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as file:
        file.setnchannels(channels)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(data.tobytes())
    return path


# ----------------------------------------------------------------- the front end
def sphinx_mfcc_reference(samples: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    """Sphinx's MFCC computed the way fe_sigproc.c does, in loops: pre-emphasis, Hamming, FFT power, filters built
    bin by bin, log, the legacy DCT."""
    x = samples.astype(np.float64) * 32768.0
    window, hop, n_fft, m = front_end.window_samples, front_end.hop_samples, front_end.fft_size, front_end.num_filters
    emphasised = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    hamming = [0.54 - 0.46 * math.cos(2 * math.pi * i / (window - 1)) for i in range(window)]
    fft_hz = front_end.sample_rate / n_fft
    melmin = 2595 * math.log10(1 + front_end.low_hz / 700)
    melmax = 2595 * math.log10(1 + front_end.high_hz / 700)
    width = (melmax - melmin) / (m + 1)
    filters = np.zeros((m, n_fft // 2 + 1))
    for i in range(m):
        edges = [int((700 * (10 ** (((i + j) * width + melmin) / 2595) - 1)) / fft_hz + 0.5) * fft_hz for j in range(3)]
        for b in range(n_fft // 2):
            hz = b * fft_hz
            if edges[0] <= hz <= edges[2]:
                low = (hz - edges[0]) / (edges[1] - edges[0]) * 2 / (edges[2] - edges[0])
                high = (edges[2] - hz) / (edges[2] - edges[1]) * 2 / (edges[2] - edges[0])
                filters[i, b] = min(low, high)
    cepstra = []
    for start in range(0, len(x) - window + 1, hop):
        frame = emphasised[start : start + window] * hamming
        power = np.abs(np.fft.rfft(frame, n_fft)) ** 2
        logs = [math.log(float(filters[i] @ power) + 1e-4) for i in range(m)]
        c = [(logs[0] / 2 + sum(logs[1:])) / m]
        for k in range(1, front_end.num_ceps):
            c.append(sum((0.5 if j == 0 else 1.0) * logs[j] * math.cos(math.pi * k * (j + 0.5) / m) for j in range(m)) / m)
        cepstra.append(c)
    return np.array(cepstra)


def chirp(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * (300 + 1500 * t) * t) + 0.05 * np.sin(2 * np.pi * 3100 * t)


def test_mfcc_equals_a_loop_by_loop_reference_of_sphinxs_front_end():
    front_end = FrontEnd()
    samples = chirp(0.3, 16000)
    ours = front_end(torch.from_numpy(samples).float()).double().numpy()
    reference = sphinx_mfcc_reference(samples, front_end)
    assert ours.shape == reference.shape == (1 + (len(samples) - 410) // 160, 13)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)
    eight_khz = FrontEnd(sample_rate=8000, fft_size=256, num_filters=31, low_hz=200, high_hz=3500)
    samples = chirp(0.3, 8000)
    np.testing.assert_allclose(eight_khz(torch.from_numpy(samples).float()).double().numpy(),
                               sphinx_mfcc_reference(samples, eight_khz), rtol=1e-4, atol=1e-4)


def test_a_tone_lights_the_filter_around_its_frequency():
    front_end = FrontEnd(features="fbank")
    t = torch.arange(8000) / 16000
    for hz in (500.0, 2000.0, 5000.0):
        log_mel = front_end(0.5 * torch.sin(2 * math.pi * hz * t))
        peak = int(log_mel.mean(0).argmax())
        low = 2595 * math.log10(1 + 130 / 700)
        step = (2595 * math.log10(1 + 6800 / 700) - low) / 41
        centre = 700 * (10 ** ((low + (peak + 1) * step) / 2595) - 1)
        assert abs(centre - hz) < 0.1 * hz, (hz, centre)


def test_deltas_stacking_and_normalisation_by_hand():
    c = torch.tensor([[0.0], [1.0], [4.0], [9.0], [16.0]])
    # window 2: (1 (c[t+1] - c[t-1]) + 2 (c[t+2] - c[t-2])) / 10, edges repeated
    expected = [(1 * (1 - 0) + 2 * (4 - 0)) / 10, (1 * (4 - 0) + 2 * (9 - 0)) / 10, (1 * (9 - 1) + 2 * (16 - 0)) / 10,
                (1 * (16 - 4) + 2 * (16 - 1)) / 10, (1 * (16 - 9) + 2 * (16 - 4)) / 10]
    assert deltas(c).squeeze(1).tolist() == pytest.approx(expected)
    frames = torch.arange(10.0).reshape(5, 2)
    assert stack_frames(frames, 2).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 8, 9]]
    features = Pipeline(delta_order=1, normalise=True, stack=1)(torch.randn(50, 3) * 5 + 2)
    assert features.shape == (50, 6)
    assert features.mean(0).abs().max() < 1e-5 and (features.std(0, unbiased=False) - 1).abs().max() < 1e-4


def test_spec_augment_masks_bands_and_spans_within_each_length():
    torch.manual_seed(0)
    x = torch.ones(40, 3, 12)
    lengths = torch.tensor([40, 20, 5])
    masked = spec_augment(x, lengths, 1, 3, 1, 10, stacked=2).reshape(40, 3, 2, 6)
    for b, length in enumerate(lengths.tolist()):
        zero_steps = (masked[:, b] == 0).all(-1).all(-1).nonzero().flatten()
        assert len(zero_steps) <= min(10, int(0.2 * length))
        assert all(step < length for step in zero_steps.tolist())
        zero_bands = (masked[:, b] == 0).all(0)  # (stack, F): a band masks the same features of both stacked frames
        assert torch.equal(zero_bands[0], zero_bands[1]) and int(zero_bands[0].sum()) <= 3


# ----------------------------------------------------------------- files
def test_mfc_files_round_trip_and_bad_ones_are_named(tmp_path):
    frames = torch.randn(7, 13)
    write_mfc(tmp_path / "a.mfc", frames)
    raw = (tmp_path / "a.mfc").read_bytes()
    assert int.from_bytes(raw[:4], "big") == 91 and len(raw) == 4 + 91 * 4
    assert torch.equal(read_mfc(tmp_path / "a.mfc"), frames)
    (tmp_path / "short.mfc").write_bytes(raw[:-4])
    with pytest.raises(UserError, match="short.mfc: not a Sphinx .mfc file: its header counts 91 floats"):
        read_mfc(tmp_path / "short.mfc")


def test_audio_is_read_mixed_down_resampled_and_bad_files_are_named(tmp_path):
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    mono = read_audio(write_wav(tmp_path / "mono.wav", tone, 8000), 16000)
    assert mono.samples.shape[0] == 16000 and not mono.mixed_down
    assert torch.allclose(read_audio(tmp_path / "mono.wav", 8000).samples, torch.from_numpy(tone).float(), atol=1e-4)
    stereo = np.stack([tone, -0.5 * tone], axis=1).reshape(-1)
    mixed = read_audio(write_wav(tmp_path / "stereo.wav", stereo, 8000, channels=2), 8000)
    assert mixed.mixed_down and torch.allclose(mixed.samples, torch.from_numpy(0.25 * tone).float(), atol=1e-4)
    write_wav(tmp_path / "odd.wav", tone[:4000], 44099)
    with pytest.raises(UserError, match="odd.wav: resampling 44099 Hz to 16000 Hz needs a ratio of 16000/44099"):
        read_audio(tmp_path / "odd.wav", 16000)
    write_wav(tmp_path / "silent.wav", np.zeros(800), 8000)
    (tmp_path / "text.wav").write_text("not audio")
    for name, message in [("missing.wav", "no such audio file"), ("silent.wav", "silent"),
                          ("text.wav", "cannot read it as audio")]:
        with pytest.raises(UserError, match=f"{name}: .*{message}"):
            read_audio(tmp_path / name, 16000)


def test_manifests_json_lines_and_tables_with_bad_lines_named(tmp_path):
    write_wav(tmp_path / "a.wav", chirp(0.2, 16000), 16000)
    (tmp_path / "m.json").write_text('{"audio_filepath": "a.wav", "text": "Hello  World", "duration": 0.2}\n\n')
    (utterance,) = read_manifest(tmp_path / "m.json")
    assert utterance.path == tmp_path / "a.wav" and utterance.text == "hello world"
    (tmp_path / "clips").mkdir()
    write_wav(tmp_path / "clips" / "b.wav", chirp(0.2, 16000), 16000)
    (tmp_path / "cv.tsv").write_text("client_id\tpath\tsentence\nx\tb.wav\tGood Day\n")
    (utterance,) = read_manifest(tmp_path / "cv.tsv")
    assert utterance.path == tmp_path / "clips" / "b.wav" and utterance.text == "good day"
    (tmp_path / "bad.json").write_text('{"audio_filepath": "a.wav", "text": "x"}\n{"audio_filepath": "a.wav"}\n')
    with pytest.raises(UserError, match="bad.json line 2: the entry lacks text"):
        read_manifest(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text('{"audio_filepath": "a.wav", "text": "x"}\n{oops\n')
    with pytest.raises(UserError, match="broken.json line 2: not JSON"):
        read_manifest(tmp_path / "broken.json")


@pytest.mark.skipif(not (SHARED / "an4").is_dir(), reason="the shared AN4 folder is not beside the repository")
def test_an4_lists_match_and_validation_holds_out_whole_speakers():
    splits = read_an4(SHARED / "an4")
    assert len(splits["train"]) == 948 and len(splits["test"]) == 130
    assert splits["test"][0].text == "rubout g m e f three nine"
    assert sum(len(u.text.split()) for u in splits["test"]) == 773
    train, validation = hold_out_speakers(splits["train"], 100, seed=0)
    assert len(validation) >= 100 and not {u.speaker for u in train} & {u.speaker for u in validation}
    assert read_mfc(splits["test"][0].path).shape[1] == 13


@pytest.mark.skipif(not (SHARED / "fsdd").is_dir(), reason="the shared FSDD folder is not beside the repository")
def test_fsdd_names_and_connected_digit_strings():
    recordings = read_fsdd(SHARED / "fsdd")
    assert len(recordings) == 3000 and sum(r.index < 5 for r in recordings) == 300
    strings = digit_strings(recordings[:50], 20, seed=3)
    assert strings == digit_strings(recordings[:50], 20, seed=3)
    assert all(2 <= len(s.parts) <= 6 and len(s.text.split()) == len(s.parts) for s in strings)


# ----------------------------------------------------------------- decoding
def test_greedy_collapses_repeats_then_drops_blanks():
    assert collapse([1, 1, 0, 2, 0, 0, 2, 2, 3]) == [1, 2, 2, 3]
    path = [0, 1, 1, 0, 1, 2, 2]
    log_probs = torch.full((7, 1, 3), -5.0)
    log_probs[torch.arange(7), 0, torch.tensor(path)] = -0.1
    assert greedy(log_probs, torch.tensor([7])) == [[1, 1, 2]]
    assert greedy(log_probs, torch.tensor([3])) == [[1]]


def exhaustive(log_probs: torch.Tensor, scorer: PrefixScorer) -> dict[tuple[int, ...], float]:
    """Every label sequence's score: the probabilities of all paths that collapse to it, plus the LM terms."""
    steps, labels = log_probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(labels), repeat=steps):
        labelled = tuple(collapse(list(path)))
        p = float(sum(log_probs[t, label] for t, label in enumerate(path)))
        totals[labelled] = float(np.logaddexp(totals.get(labelled, -np.inf), p))
    return {labelled: total + scorer.at_end(labelled) + sum(scorer.on_extend(labelled[:i], labelled[i])
                                                              for i in range(len(labelled)))
            for labelled, total in totals.items()}


@pytest.mark.parametrize("lm_weight, word_bonus, unknown_offset", [(0.0, 0.0, 0.0), (1.0, 0.5, 0.0), (2.0, -1.0, -3.0)])
def test_prefix_beam_search_equals_enumerating_every_path(lm_weight, word_bonus, unknown_offset):
    torch.manual_seed(1)
    characters = " ab"  # labels: 1 space, 2 a, 3 b
    log_probs = torch.randn(5, 4).mul(1.5).log_softmax(-1)
    # unknown words: "aa", "bb" (charged at their second letter), "ba" (the beginning of "bab": charged at its end)
    lm = CountedNGram([["a", "b"], ["ab", "a"], ["b"], ["bab"]], order=2)
    scorer = PrefixScorer(characters, 1, lm, lm_weight, word_bonus, unknown_offset)
    scores = exhaustive(log_probs, scorer)
    found = prefix_beam_search(log_probs, scorer, beam_size=10_000)
    assert {s.labels: s.score for s in found} == pytest.approx(scores)
    best = sorted(scores.items(), key=lambda item: -item[1])[:3]
    assert [s.labels for s in prefix_beam_search(log_probs, scorer, beam_size=64)[:3]] == [labels for labels, _ in best]


def test_a_language_model_of_weight_0_changes_nothing():
    torch.manual_seed(2)
    log_probs = torch.randn(12, 4).log_softmax(-1)
    lm = CountedNGram([["a", "b"], ["b", "b", "a"]], order=3)
    plain = prefix_beam_search(log_probs, PrefixScorer(" ab", 1, None, 0.0, 0.0), beam_size=8)
    weightless = prefix_beam_search(log_probs, PrefixScorer(" ab", 1, lm, 0.0, 0.0), beam_size=8)
    assert [(s.labels, round(s.score, 9)) for s in plain] == [(s.labels, round(s.score, 9)) for s in weightless]
    weighted = prefix_beam_search(log_probs, PrefixScorer(" ab", 1, lm, 1.0, 0.0), beam_size=8)
    assert [s.score for s in weighted] != [s.score for s in plain]


def test_the_unknown_word_offset_is_charged_once_per_unknown_word():
    lm = CountedNGram([["a", "b"], ["bab"]], order=2)  # "ba" is unknown but begins "bab"
    def text_score(text: str, offset: float) -> float:
        labels = tuple(" ab".index(character) + 1 for character in text)
        scorer = PrefixScorer(" ab", 1, lm, 0.5, 0.0, offset)
        return sum(scorer.on_extend(labels[:i], labels[i]) for i in range(len(labels))) + scorer.at_end(labels)
    for text, unknown in [("a b", 0), ("bab", 0), ("aa", 1), ("ba", 1), ("ba aab bab", 2), ("abab b ", 1)]:
        assert text_score(text, -4.0) - text_score(text, 0.0) == pytest.approx(-4.0 * unknown), text


def test_the_unknown_word_offset_keeps_the_search_to_the_vocabulary():
    # posteriors that spell "ab" (unknown to a model of the words "a" and "b") far better than "a b"
    path = [2, 0, 3]  # a - b
    log_probs = torch.full((3, 4), -6.0)
    log_probs[torch.arange(3), torch.tensor(path)] = -0.01
    log_probs[1, 1] = -3.0  # a space in the middle: "a b"
    log_probs = log_probs.log_softmax(-1)
    lm = CountedNGram([["a"], ["b"], ["a", "b"]], order=2)
    assert lm.known_words() == {"a", "b"}
    def best(offset: float) -> tuple[int, ...]:
        return prefix_beam_search(log_probs, PrefixScorer(" ab", 1, lm, 0.5, 0.0, offset), beam_size=16)[0].labels
    assert best(0.0) == (2, 3)  # "ab": the acoustics win over the model's <unk> probability
    assert best(-10.0) == (2, 1, 3)  # "a b": the only words the model knows


def test_greedy_decoding_of_a_run_with_an_unknown_word_offset_drops_its_language_model():
    runs = CTCDecoding(beam_size=16, lm="transcripts", unknown_offset=-5.0)
    greedy_decoding = DecodingOptions(beam_size=1).over(runs)
    assert (greedy_decoding.lm, greedy_decoding.unknown_offset) == ("none", 0.0)
    assert DecodingOptions(lm_weight=1.0).over(runs).unknown_offset == -5.0  # the run's beam search, as it was
    with pytest.raises(UserError, match="--unknown-offset -5: it weighs words against a language model"):
        DecodingOptions(beam_size=1, unknown_offset=-5.0).over(runs)


def test_counted_ngrams_sum_to_one_and_arpa_backs_off(tmp_path):
    lm = CountedNGram([["a", "b", "c"], ["a", "c"], ["b"]], order=3)
    for history in [(), ("a",), ("a", "b"), ("zz", "a")]:
        assert sum(math.exp(lm.log_prob(history, word)) for word in lm.vocabulary) == pytest.approx(1.0)
    assert lm.log_prob(("a",), "c") > lm.log_prob(("a",), "a")  # seen after a, against never
    (tmp_path / "lm.arpa").write_text(
        "\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1.0\t</s>\n-99\t<s>\t-0.5\n-0.5\tA\t-0.3\n-0.7\tB\n\n"
        "\\2-grams:\n-0.2\tA B\n\n\\end\\\n")
    arpa = ArpaModel.read(tmp_path / "lm.arpa")
    assert arpa.known_words() == {"a", "b"}
    assert arpa.log_prob(("a",), "b") == pytest.approx(-0.2 * math.log(10))
    assert arpa.log_prob(("b",), "a") == pytest.approx(-0.5 * math.log(10))  # B has no back-off weight: 0
    assert arpa.log_prob(("a",), "a") == pytest.approx((-0.3 - 0.5) * math.log(10))
    assert arpa.log_prob((), END) == pytest.approx((-0.5 - 1.0) * math.log(10))  # from <s>: its back-off, then </s>
    (tmp_path / "bad.arpa").write_text("\\data\\\n\\1-grams:\nxyz A\n")
    with pytest.raises(UserError, match="bad.arpa line 3: 'xyz' is not a number"):
        ArpaModel.read(tmp_path / "bad.arpa")


@pytest.mark.skipif(not (SHARED / "an4").is_dir(), reason="the shared AN4 folder is not beside the repository")
def test_an4s_flat_unigram_reads():
    arpa = ArpaModel.read(SHARED / "an4" / "etc" / "an4.ug.lm")
    assert arpa.log_prob(("one",), "two") == pytest.approx(-2.0253 * math.log(10))
    assert arpa.log_prob((), "november") == arpa.log_prob((), "<unk>")  # not in the model: read as <UNK>


# ----------------------------------------------------------------- metrics
def test_error_rates_by_hand():
    metrics = speech_errors(["a b c d", "x y"], ["a x c", "x y z"])
    assert metrics["wer"] == pytest.approx(3 / 6) and metrics["words"] == 6  # 1 S + 1 D, then 1 I
    assert metrics["exact"] == 0.0 and speech_errors(["a b", "c"], ["a b", "d"])["exact"] == 0.5
    # characters, spaces included: "a b c d" -> "a x c" is 1 S + 2 D (" d"); "x y" -> "x y z" is 2 I (" z"): 5 / 10
    assert metrics["cer"] == pytest.approx(5 / 10)
    (first, second) = utterance_errors(["a b c d", "x y"], ["a x c", "x y z"], ["one", "two"])
    assert (first["substitutions"], first["deletions"], first["insertions"]) == (1, 1, 0)
    assert second == {"utterance": "two", "reference": "x y", "transcript": "x y z", "substitutions": 0,
                      "deletions": 0, "insertions": 1, "wer": 0.5}


# ----------------------------------------------------------------- the acoustic model
@pytest.mark.parametrize("subsample", [1, 4])
def test_a_padded_batch_decodes_as_each_utterance_alone(subsample):
    torch.manual_seed(0)
    config = AcousticModelConfig(cell="gru", hidden_size=8, num_layers=2, bidirectional=True, subsample=subsample,
                                 conv_channels=6)
    model = AcousticModel(5, 4, config).eval()
    utterances = [torch.randn(length, 5) for length in (13, 7, 20)]
    batch = torch.nn.utils.rnn.pad_sequence(utterances)
    lengths = torch.tensor([13, 7, 20])
    together, _, _ = model(batch, lengths=lengths)
    steps = model.output_lengths(lengths)
    assert steps.tolist() == ([13, 7, 20] if subsample == 1 else [4, 2, 5])
    for column, utterance in enumerate(utterances):
        alone, _, _ = model(utterance[:, None])
        assert torch.allclose(together[: steps[column], column], alone[:, 0], atol=1e-5)


@pytest.mark.parametrize("subsample", [1, 2])
def test_the_unidirectional_model_streams(subsample):
    """--no-bidirectional: an output step reads no frame after the last one its convolutions reach, so a
    transcript can be emitted while the audio still arrives."""
    torch.manual_seed(0)
    config = AcousticModelConfig(cell="gru", hidden_size=8, num_layers=2, bidirectional=False, subsample=subsample,
                                 conv_channels=6)
    model = AcousticModel(5, 4, config).eval()
    frames = torch.randn(16, 1, 5)
    changed = frames.clone()
    changed[10:] = torch.randn(6, 1, 5)  # the future: frames 10..15
    before, _, _ = model(frames)
    after, _, _ = model(changed)
    # without subsampling, steps 0..9 read frames 0..9; a stride-2 kernel-3 convolution's step t reads frames
    # 2t-1..2t+1, so steps 0..4 read frames up to 9
    unaffected = 10 if subsample == 1 else 5
    assert torch.allclose(before[:unaffected], after[:unaffected])
    assert not torch.allclose(before[unaffected:], after[unaffected:])
    config.bidirectional = True  # the check can fail: a bidirectional model's early steps see the future
    both_ways = AcousticModel(5, 4, config).eval()
    assert not torch.allclose(both_ways(frames)[0][:unaffected], both_ways(changed)[0][:unaffected])


def test_the_loss_is_torchs_ctc_and_too_short_utterances_are_recognised():
    torch.manual_seed(0)
    model = AcousticModel(5, 4, AcousticModelConfig(cell="lstm", hidden_size=8, frequency_masks=0, time_masks=0))
    inputs, lengths = torch.randn(9, 2, 5), torch.tensor([9, 6])
    targets = torch.tensor([[1, 2], [2, 3], [3, 0]])  # (S, B), padded with the blank
    log_probs, loss, _ = model(inputs, lengths=lengths, targets=targets)
    expected = torch.nn.functional.ctc_loss(log_probs, targets.t(), lengths, torch.tensor([3, 2]))
    assert float(loss) == pytest.approx(float(expected))
    assert fits_ctc(torch.tensor([1, 2, 2]), 4) and not fits_ctc(torch.tensor([1, 2, 2]), 3)


# ----------------------------------------------------------------- end to end
TONES = {"a": 400.0, "b": 1200.0, "c": 2800.0}


def tone_utterance(text: str, rng: np.random.Generator) -> np.ndarray:
    """Each letter a 0.12 s tone of its own pitch, 0.06 s of faint noise between letters."""
    rate, pieces = 16000, [rng.normal(0, 1e-3, 800)]
    for letter in text:
        t = np.arange(int(0.12 * rate)) / rate
        pieces += [0.4 * np.sin(2 * np.pi * TONES[letter] * t), rng.normal(0, 1e-3, int(0.06 * rate))]
    return np.concatenate(pieces)


def write_tone_manifest(folder: Path, texts: list[str], seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for number, text in enumerate(texts):
        path = write_wav(folder / f"{number}.wav", tone_utterance(text, rng), 16000)
        lines.append(json.dumps({"audio_filepath": path.name, "text": text, "duration": 0.0}))
    (folder / "manifest.json").write_text("\n".join(lines) + "\n")
    return folder / "manifest.json"


SMALL = ["--cell", "gru", "--hidden-size", "32", "--num-layers", "1", "--batch-size", "8", "--lr", "0.01",
         "--max-minutes", "0", "--eval-every", "50", "--log-every", "10", "--dropout", "0", "--time-masks", "0",
         "--frequency-masks", "0"]


@pytest.fixture(scope="module")
def tone_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    words = ["".join(letters) for n in (2, 3) for letters in itertools.product("abc", repeat=n)]  # 9 + 27
    rng = np.random.default_rng(0)
    test_words = ["cab", "bca", "acb", "bac", "ab", "ca"]
    train = [w for w in words if w not in test_words]
    train_manifest = write_tone_manifest(folder / "train", list(rng.choice(train, 240)), seed=1)
    dev_manifest = write_tone_manifest(folder / "dev", list(rng.choice(train, 24)), seed=2)
    test_manifest = write_tone_manifest(folder / "test", test_words * 2, seed=3)
    run = folder / "run"
    result = rnnkit_here("train", "speech", "--manifest", train_manifest, "--dev-manifest", dev_manifest,
                    "--test-manifest", test_manifest, *SMALL, "--max-steps", "240", "--out", run)
    assert result.returncode == 0, result.stderr
    return run, test_manifest


def test_a_tiny_model_learns_to_transcribe_held_out_tone_sequences(tone_run):
    run, _ = tone_run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["cer"] < 0.1, summary["test"]
    lines = [json.loads(line) for line in (run / "test_utterances.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and lines[0]["reference"] == "cab"


def test_predict_transcribes_files_in_both_formats_and_answers_bad_ones_in_place(tone_run, tmp_path):
    run, test_manifest = tone_run
    folder = test_manifest.parent
    jsonl = rnnkit_here("predict", "--checkpoint", run, folder / "0.wav", tmp_path / "missing.wav", folder / "1.wav",
                   "--format", "jsonl", "--beam-size", "4", "--n-best", "2")
    assert jsonl.returncode == 2
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r.get("transcript") for r in records] == ["cab", None, "bca"]
    assert "missing.wav: no such audio file" in records[1]["error"] and len(records[0]["n_best"]) == 2
    assert records[0]["n_best"][0]["score"] >= records[0]["n_best"][1]["score"]
    text = rnnkit_here("predict", "--checkpoint", run, folder / "0.wav")
    assert text.returncode == 0 and text.stdout.split("\t")[1].strip() == "cab"
    assert "real-time factor" in text.stderr


def test_evaluate_with_beam_search_and_a_language_model_writes_each_utterance(tone_run, tmp_path):
    run, test_manifest = tone_run
    errors = tmp_path / "errors.jsonl"
    result = rnnkit_here("evaluate", "--checkpoint", run, "--manifest", test_manifest, "--beam-size", "8", "--lm",
                    "transcripts", "--utterances", errors)
    assert result.returncode == 0, result.stderr
    assert "evaluation WER" in result.stdout and "beam 8, lm transcripts" in result.stdout
    assert len(errors.read_text().splitlines()) == 12
    validation = rnnkit_here("evaluate", "--checkpoint", run, "--split", "validation")
    assert validation.returncode == 0 and "24 utterances" in validation.stdout and "; greedy;" in validation.stdout


def test_utterances_too_short_for_their_transcripts_are_left_out_and_counted(tmp_path):
    manifest = write_tone_manifest(tmp_path / "tones", ["ab", "ba", "cab", "bc"] * 3, seed=0)
    write_wav(tmp_path / "tones" / "short.wav", tone_utterance("a", np.random.default_rng(0))[:3000], 16000)
    with manifest.open("a") as file:  # 0.19 s: 19 frames, 7 steps after stacking, for 12 letters
        file.write(json.dumps({"audio_filepath": "short.wav", "text": "abcabcabcabc"}) + "\n")
    result = rnnkit_here("train", "speech", "--manifest", manifest, "--dev-manifest", manifest, *SMALL, "--max-steps",
                         "2", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "left 1 of 13 training utterances out: too few steps for their transcripts" in result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert math.isfinite(summary["validation"]["loss"])  # the short one is evaluated: it counts 0, never NaN


@pytest.mark.parametrize("arguments, fragments", [
    (["--manifest", "{tmp}/bad.json"], ["bad.json line 1: not JSON"]),
    (["--manifest", "{tmp}/odd.json"], ["odd.json line 1: the entry lacks text"]),
    (["--manifest", "{tmp}/ok.json", "--dev-manifest", "{tmp}/strange.json"],
     ["strange.json line 1: the transcript", "character(s) the model's vocabulary lacks ('z')"]),
    (["--manifest", "{tmp}/gone.json"], ["gone.wav: no such audio file"]),
    (["--dataset", "fsdd", "--protocol", "random"], ["--protocol", "official, speaker, connected"]),
    (["--lm", "transcripts"], ["--lm transcripts", "--beam-size > 1"]),
])
def test_bad_input_is_one_line_and_leaves_the_folder_alone(tmp_path, arguments, fragments):
    write_wav(tmp_path / "a.wav", tone_utterance("ab", np.random.default_rng(0)), 16000)
    (tmp_path / "bad.json").write_text("{not json\n")
    (tmp_path / "odd.json").write_text('{"audio_filepath": "a.wav"}\n')
    (tmp_path / "ok.json").write_text('{"audio_filepath": "a.wav", "text": "ab"}\n' * 20)
    (tmp_path / "strange.json").write_text('{"audio_filepath": "a.wav", "text": "az"}\n')
    (tmp_path / "gone.json").write_text('{"audio_filepath": "gone.wav", "text": "ab"}\n')
    arguments = [argument.replace("{tmp}", str(tmp_path)) for argument in arguments]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    before = tree_digest(out)
    assert_one_line_error(rnnkit_here("train", "speech", *arguments, *SMALL, "--max-steps", "1", "--out", out,
                                      "--overwrite"), *fragments)
    assert tree_digest(out) == before


def test_dtw_equals_the_recursion_written_out_and_finds_the_nearest_word():
    from rnnkit.models.dtw import dtw_distances, nearest_neighbour

    def plain(a, b):
        table = [[math.inf] * (len(b) + 1) for _ in range(len(a) + 1)]
        table[0][0] = 0.0
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                table[i][j] = float(torch.dist(a[i - 1], b[j - 1])) + min(table[i - 1][j], table[i - 1][j - 1],
                                                                         table[i][j - 1])
        return table[-1][-1] / (len(a) + len(b))

    torch.manual_seed(0)
    references = [torch.randn(n, 3) for n in (4, 9, 1, 6)]
    query = torch.randn(5, 3)
    assert dtw_distances(query, references).tolist() == pytest.approx([plain(query, r) for r in references], rel=1e-5)
    slow = torch.repeat_interleave(references[1], 2, dim=0)  # the same word said twice as slowly
    assert nearest_neighbour([slow], references, ["a", "b", "c", "d"]) == ["b"]


def test_the_connected_digit_baseline_reads_strings_of_distinct_tones(tmp_path, monkeypatch):
    from rnnkit.tasks.speech import task

    rate, rng = 16000, np.random.default_rng(0)
    for digit, pitch in enumerate((300, 700, 1500)):  # zero, one, two: a tone each, a little off pitch per speaker
        for speaker, shift in (("theo", 1.0), ("george", 1.04)):
            (tmp_path / "recordings").mkdir(exist_ok=True)
            for index in range(16):
                t = np.arange(int(rng.uniform(0.15, 0.3) * rate)) / rate
                write_wav(tmp_path / "recordings" / f"{digit}_{speaker}_{index}.wav",
                          0.4 * np.sin(2 * np.pi * pitch * shift * t) + rng.normal(0, 1e-3, t.size), rate)
    monkeypatch.setitem(task.CONNECTED_STRINGS, "test", 8)
    config = task.SpeechConfig()
    config.dataset = task.SpeechData(dataset="fsdd", data_dir=str(tmp_path), protocol="connected", speaker="theo")
    session = task.SpeechSession(config, CharVocabulary.from_text("zero one two"), [], torch.device("cpu"))
    session.splits["test"] = session.examples(task.read_utterances(config.dataset)["test"], "test")
    session.training = session.splits["test"]  # strings: the connected baseline's case
    baseline = session.baseline()["baseline"]
    assert baseline["utterances"] == 8 and baseline["words"] > 16 and baseline["wer"] == 0.0


@pytest.mark.parametrize("penalty", [0.0, 2.0])
def test_connected_word_dtw_equals_exhaustive_search_over_word_sequences(penalty):
    from itertools import product

    from rnnkit.models.dtw import connected_words

    def cost(sequence, distance):  # the best alignment of one word sequence, written out over (word k, frame j)
        table = {(0, 0): distance[0][sequence[0]][0]}
        for t in range(1, len(distance)):
            here = {}
            for k, word in enumerate(sequence):
                for j in range(len(distance[t][word])):
                    before = [table.get((k, j - step), math.inf) for step in (0, 1, 2) if j - step >= 0]
                    if j == 0 and k > 0:
                        before.append(table.get((k - 1, len(distance[t][sequence[k - 1]]) - 1), math.inf) + penalty)
                    here[(k, j)] = distance[t][word][j] + min(before)
            table = here
        return table.get((len(sequence) - 1, len(distance[0][sequence[-1]]) - 1), math.inf)

    torch.manual_seed(1)
    references = [torch.randn(n, 2) for n in (2, 3, 1)]
    for steps in (1, 2, 3, 4, 5, 5, 6, 6, 6, 6):
        query = torch.randn(steps, 2)
        distance = [[torch.cdist(query[t : t + 1], r)[0].tolist() for r in references] for t in range(steps)]
        sequences = [s for n in range(1, steps + 1) for s in product(range(3), repeat=n)]
        best = min(sequences, key=lambda sequence: cost(sequence, distance))
        assert connected_words(query, references, ["a", "b", "c"], penalty) == ["abc"[i] for i in best]
    spoken = torch.cat([references[1], references[1], references[0].repeat_interleave(2, dim=0)])
    assert connected_words(spoken, references, ["a", "b", "c"]) == ["b", "b", "a"]
