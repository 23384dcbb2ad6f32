"""The speech front end, in torch: samples -> frames -> power spectrum -> mel filterbank -> log -> (DCT) features,
then what a model reads them as (deltas, per-utterance normalisation, frames stacked).

    samples (N,) --pre-emphasis--> frames (T, W) --Hamming, |rfft|^2--> (T, F/2+1) --mel--> (T, M)
        --log--> log-mel filterbank "fbank" (T, M) --DCT--> "mfcc" (T, C)

The default ``FrontEnd`` follows CMU Sphinx's documented MFCC (sphinxbase ``fe_sigproc.c``,
the front end of AN4's features: 16 kHz, 100 frames/s, 512-point FFT, 40 filters from 130 to
6,800 Hz, 13 cepstra): pre-emphasis 0.97 over the whole signal, a 25.625 ms symmetric Hamming
window, the power spectrum of 16-bit-scale samples, triangular filters on the mel scale
2595 log10(1 + f/700) with edges rounded to FFT bins and unit area, the natural log with a
1e-4 floor, and Sphinx's "legacy" DCT of the M log-mel energies m_j (the first filter weighted 1/2):

    c_i = (1 / M) sum_{j=0}^{M-1} beta_j m_j cos(pi i (j + 1/2) / M),    beta_0 = 1/2, beta_j = 1 otherwise

so that a model trained on AN4's .mfc files can read a user's 16 kHz recording.
``--features fbank`` gives the log-mel filterbank itself (DeepSpeech 2, ESPnet, NeMo).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.data.audio import MFC_COEFFICIENTS, read_audio, read_mfc
from rnnkit.errors import UserError

FEATURE_KINDS = ("mfcc", "fbank")
INT16_SCALE = 32768.0  # Sphinx computes on 16-bit sample values, not on [-1, 1)
LOG_FLOOR = 1e-4  # Sphinx's: log(mel + 1e-4)


@dataclass
class FrontEnd:
    """How audio becomes feature frames (the defaults: Sphinx's MFCC of AN4; its 8 kHz recipe: docs/tasks/speech.md)."""

    features: str = "mfcc"
    """mfcc (cepstra, as AN4's files) or fbank (the log-mel filterbank)."""
    sample_rate: int = 16000
    """Hz; audio at another rate is resampled to it."""
    window_ms: float = 25.625
    """Analysis window (Sphinx's default)."""
    hop_ms: float = 10.0
    """Frame shift: 10 ms is 100 frames per second."""
    fft_size: int = 512
    num_filters: int = 40
    """Mel filters."""
    low_hz: float = 130.0
    high_hz: float = 6800.0
    num_ceps: int = 13
    """Cepstra kept (mfcc)."""
    pre_emphasis: float = 0.97

    def validate(self) -> None:
        if self.features not in FEATURE_KINDS:
            raise UserError(f"--features: expected one of {', '.join(FEATURE_KINDS)}, got {self.features!r}")
        if self.window_samples > self.fft_size:
            raise UserError(f"--window-ms: {self.window_ms} ms is {self.window_samples} samples at {self.sample_rate} Hz, "
                            f"more than --fft-size {self.fft_size}; raise --fft-size")
        if not 0 <= self.low_hz < self.high_hz <= self.sample_rate / 2:
            raise UserError(f"--low-hz/--high-hz: expected 0 <= low < high <= {self.sample_rate / 2:g} (half the sample "
                            f"rate), got {self.low_hz:g} and {self.high_hz:g}")
        if self.features == "mfcc" and not 0 < self.num_ceps <= self.num_filters:
            raise UserError(f"--num-ceps: expected 1 to --num-filters ({self.num_filters}), got {self.num_ceps}")

    @property
    def window_samples(self) -> int:
        return int(round(self.window_ms * self.sample_rate / 1000))

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop_ms * self.sample_rate / 1000))

    @property
    def size(self) -> int:
        """Values per frame."""
        return self.num_ceps if self.features == "mfcc" else self.num_filters

    def __call__(self, samples: torch.Tensor) -> torch.Tensor:
        """(N,) samples in [-1, 1) at ``sample_rate`` -> (T, size) frames; T = 0 for audio shorter than one window."""
        spectrum = power_spectrum(samples.double() * INT16_SCALE, self.window_samples, self.hop_samples, self.fft_size,
                                  self.pre_emphasis)
        log_mel = torch.log(spectrum @ mel_filters(self).T + LOG_FLOOR)  # (T, M)
        if self.features == "fbank":
            return log_mel.float()
        return (log_mel @ legacy_dct(self.num_filters, self.num_ceps).T).float()



def power_spectrum(samples: torch.Tensor, window: int, hop: int, fft_size: int, pre_emphasis: float) -> torch.Tensor:
    """(N,) -> (T, fft_size/2 + 1) power of each Hamming-windowed, zero-padded frame; one frame per whole window."""
    emphasised = torch.cat([samples[:1], samples[1:] - pre_emphasis * samples[:-1]])
    if emphasised.shape[0] < window:
        return emphasised.new_zeros(0, fft_size // 2 + 1)
    frames = emphasised.unfold(0, window, hop)  # (T, W)
    windowed = frames * torch.hamming_window(window, periodic=False, dtype=frames.dtype)
    return torch.fft.rfft(windowed, n=fft_size).abs().square()


def mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def mel_to_hz(value: float) -> float:
    return 700.0 * (10.0 ** (value / 2595.0) - 1.0)


def mel_filters(front_end: FrontEnd) -> torch.Tensor:
    """(M, fft_size/2 + 1) triangles, equally spaced in mel, edges rounded to FFT bins, each of unit area."""
    bins = front_end.fft_size // 2 + 1
    bin_hz = front_end.sample_rate / front_end.fft_size
    low, high = mel(front_end.low_hz), mel(front_end.high_hz)
    step = (high - low) / (front_end.num_filters + 1)
    frequencies = torch.arange(bins, dtype=torch.float64) * bin_hz
    filters = torch.zeros(front_end.num_filters, bins, dtype=torch.float64)
    for i in range(front_end.num_filters):
        left, centre, right = (int(mel_to_hz(low + (i + j) * step) / bin_hz + 0.5) * bin_hz for j in range(3))
        # where rounding made an edge meet the centre, Sphinx's 0/0 slope loses the comparison: the other slope counts
        rising = (frequencies - left) / (centre - left) if centre > left else torch.full_like(frequencies, math.inf)
        falling = (right - frequencies) / (right - centre) if right > centre else torch.full_like(frequencies, math.inf)
        triangle = torch.minimum(rising, falling).clamp(min=0) * 2 / (right - left)
        triangle[(frequencies < left) | (frequencies > right)] = 0
        triangle[-1] = 0  # the Nyquist bin is never inside a filter (Sphinx stops at fft_size/2)
        filters[i] = triangle
    return filters


def legacy_dct(num_filters: int, num_ceps: int) -> torch.Tensor:
    """(C, M): Sphinx's legacy DCT of log-mel energies (the module docstring's equations)."""
    i = torch.arange(num_ceps, dtype=torch.float64)[:, None]
    j = torch.arange(num_filters, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * i * (j + 0.5) / num_filters)
    basis[:, 0] *= 0.5
    return basis / num_filters


# ----------------------------------------------------------------- what the model reads
def deltas(features: torch.Tensor, window: int = 2) -> torch.Tensor:
    """(T, C) -> (T, C): the regression d_t = sum_{n=1..N} n (c_{t+n} - c_{t-n}) / (2 sum n^2), edges repeated (HTK)."""
    padded = torch.cat([features[:1].expand(window, -1), features, features[-1:].expand(window, -1)])
    steps = features.shape[0]
    total = sum(n * (padded[window + n : window + n + steps] - padded[window - n : window - n + steps])
                for n in range(1, window + 1))
    return total / (2 * sum(n * n for n in range(1, window + 1)))


def normalise(features: torch.Tensor) -> torch.Tensor:
    """Per-utterance mean and variance normalisation of each coefficient (CMVN)."""
    mean = features.mean(0, keepdim=True)
    std = features.std(0, unbiased=False, keepdim=True)
    return (features - mean) / std.clamp(min=1e-5)


def stack_frames(features: torch.Tensor, stack: int) -> torch.Tensor:
    """(T, C) -> (ceil(T / stack), stack * C): each output frame is ``stack`` consecutive frames side by side, the
    last repeated to fill the end (low frame rate models: fewer, wider steps for the recurrent layers)."""
    if stack == 1:
        return features
    missing = -features.shape[0] % stack
    padded = torch.cat([features, features[-1:].expand(missing, -1)])
    return padded.reshape(-1, stack * features.shape[1])


@dataclass
class Pipeline:
    """What the model reads, from front-end (or AN4's) frames."""

    delta_order: int = 2
    """Append deltas (1) and delta-deltas (2) to each frame; 0: none."""
    normalise: bool = True
    """Per-utterance mean and variance normalisation."""
    stack: int = 3
    """Stack this many frames into one and keep one step in that many (1: every frame)."""

    def validate(self) -> None:
        if self.delta_order not in (0, 1, 2):
            raise UserError(f"--delta-order: expected 0, 1 or 2, got {self.delta_order}")
        if self.stack < 1:
            raise UserError(f"--stack: expected a positive integer, got {self.stack}")

    def size(self, frame_size: int) -> int:
        return frame_size * (1 + self.delta_order) * self.stack

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """(T, C) -> (ceil(T / stack), size(C))."""
        parts = [frames]
        for _ in range(self.delta_order):
            parts.append(deltas(parts[-1]))
        features = torch.cat(parts, dim=1)
        if self.normalise:
            features = normalise(features)
        return stack_frames(features, self.stack)


def spec_augment(features: torch.Tensor, lengths: torch.Tensor, frequency_masks: int, frequency_width: int,
                 time_masks: int, time_width: int, stacked: int = 1, max_time_fraction: float = 0.2) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) without time warping: each sequence of a (T, B, F) batch gets its own
    ``frequency_masks`` bands of up to ``frequency_width`` features and ``time_masks`` spans of up to ``time_width``
    steps (and at most ``max_time_fraction`` of its length) set to 0, the mean of normalised features. With
    ``stacked`` frames in each step (``stack_frames``), a band covers the same features of each of them."""
    steps, batch, _ = features.shape
    features = features.reshape(steps, batch, stacked, -1)  # (T, B, stack, F / stack)
    width = features.shape[-1]
    keep = torch.ones(steps, batch, 1, width, dtype=torch.bool, device=features.device)
    feature_index = torch.arange(width, device=features.device)
    step_index = torch.arange(steps, device=features.device)
    for _ in range(frequency_masks):
        size = torch.randint(0, frequency_width + 1, (batch,), device=features.device)
        start = (torch.rand(batch, device=features.device) * (width - size + 1)).long()
        band = (feature_index[None] >= start[:, None]) & (feature_index[None] < (start + size)[:, None])  # (B, F)
        keep &= ~band[None, :, None]
    limits = torch.minimum(torch.full_like(lengths, time_width), (lengths * max_time_fraction).long()).to(features.device)
    for _ in range(time_masks):
        size = (torch.rand(batch, device=features.device) * (limits + 1)).long()
        start = (torch.rand(batch, device=features.device) * (lengths.to(features.device) - size + 1)).long()
        span = (step_index[:, None] >= start[None]) & (step_index[:, None] < (start + size)[None])  # (T, B)
        keep &= ~span[:, :, None, None]
    return (features * keep).reshape(steps, batch, -1)


def frames_of(path: str | Path, front_end: FrontEnd) -> tuple[torch.Tensor, float, bool]:
    """(frames (T, C), seconds of audio, whether it was mixed down) of a recording, or of a Sphinx .mfc file (AN4's
    features, 100 frames a second, which only a 13-cepstra front end reads)."""
    if Path(path).suffix.lower() == ".mfc":
        if front_end.features != "mfcc" or front_end.num_ceps != MFC_COEFFICIENTS:
            raise UserError(f"{path}: a .mfc file holds {MFC_COEFFICIENTS} cepstra per frame, and this model reads "
                            f"{front_end.size} {front_end.features} values; give it audio instead")
        frames = read_mfc(path)
        return frames, frames.shape[0] * front_end.hop_ms / 1000, False
    recording = read_audio(path, front_end.sample_rate)
    frames = front_end(recording.samples)
    if frames.shape[0] == 0:
        raise UserError(f"{path}: the recording is shorter than one {front_end.window_ms:g} ms analysis window")
    return frames, recording.samples.shape[0] / front_end.sample_rate, recording.mixed_down


def frames_of_string(parts: tuple[Path, ...], pauses: tuple[float, ...], front_end: FrontEnd,
                     seed: int) -> torch.Tensor:
    """The frames of recordings joined with ``pauses`` seconds of ``pause`` between them."""
    generator = torch.Generator().manual_seed(seed)
    pieces = [read_audio(parts[0], front_end.sample_rate).samples]
    for path, seconds in zip(parts[1:], pauses):
        pieces.append(pause(seconds, front_end.sample_rate, generator))
        pieces.append(read_audio(path, front_end.sample_rate).samples)
    return front_end(torch.cat(pieces))


def pause(seconds: float, sample_rate: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``seconds`` of faint noise, as a quiet room's: what joins the recordings of a connected-digit string."""
    return torch.randn(int(seconds * sample_rate), generator=generator) * 1e-3
