"""Reading recordings and Sphinx feature files: audio as mono float samples at the rate a model wants.

``read_audio`` reads WAV, FLAC and what else libsndfile reads with ``soundfile`` (WAV with the
standard library's ``wave`` where soundfile is not installed), mixes several channels down
(``Recording.mixed_down`` says it happened, so that a caller can say so once) and resamples
with a polyphase filter (``scipy.signal.resample_poly``) when the file's rate differs.
``read_mfc`` reads a Sphinx ``.mfc`` file: a big-endian int32 count of floats, then that
many big-endian float32 values, ``MFC_COEFFICIENTS`` per frame (AN4's features).

A file that cannot be used raises ``UserError`` naming it: missing, unreadable, empty,
silent, or at a rate that cannot be resampled.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rnnkit.errors import UserError

MFC_COEFFICIENTS = 13
SILENCE = 1e-5  # peak amplitude (of 1.0 full scale) below which a recording holds nothing to transcribe


@dataclass
class Recording:
    samples: torch.Tensor  # (N,) float32 in [-1, 1), mono
    sample_rate: int
    mixed_down: bool = False  # the file had several channels, averaged into one


def read_audio(path: str | Path, sample_rate: int) -> Recording:
    """The recording at ``path`` as mono samples at ``sample_rate`` Hz."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such audio file; check the path (manifest paths are relative to the manifest)")
    try:
        samples, rate = _read_samples(path)
    except (RuntimeError, OSError, EOFError, wave.Error, ValueError) as error:
        raise UserError(f"{path}: cannot read it as audio ({error}); give a WAV or FLAC file") from None
    mixed_down = samples.ndim == 2 and samples.shape[1] > 1
    samples = samples.mean(axis=1) if samples.ndim == 2 else samples
    if samples.size == 0:
        raise UserError(f"{path}: the file holds no samples; remove it or record it again")
    if not np.isfinite(samples).all() or np.abs(samples).max() < SILENCE:
        raise UserError(f"{path}: the recording is silent (or not finite); there is nothing to transcribe")
    if rate != sample_rate:
        samples = resample(samples, rate, sample_rate, path)
    return Recording(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), sample_rate, mixed_down)


def _read_samples(path: Path) -> tuple[np.ndarray, int]:
    try:
        import soundfile
    except ImportError:  # the standard library reads PCM WAV
        return _read_wave(path)
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    return samples, int(rate)


def _read_wave(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as file:
        width, channels, rate = file.getsampwidth(), file.getnchannels(), file.getframerate()
        raw = file.readframes(file.getnframes())
    if width not in (1, 2, 4):
        raise ValueError(f"{8 * width}-bit PCM is not read without soundfile")
    kind = {1: np.uint8, 2: np.int16, 4: np.int32}[width]
    values = np.frombuffer(raw, dtype=kind).astype(np.float32)
    values = (values - 128) / 128 if width == 1 else values / float(2 ** (8 * width - 1))
    return values.reshape(-1, channels) if channels > 1 else values, rate


def resample(samples: np.ndarray, rate: int, target: int, path: Path) -> np.ndarray:
    """``samples`` at ``rate`` Hz resampled to ``target`` Hz (a polyphase filter over the rates' ratio)."""
    from scipy.signal import resample_poly

    if rate <= 0:
        raise UserError(f"{path}: the file says its sample rate is {rate} Hz; it cannot be resampled")
    divisor = math.gcd(rate, target)
    up, down = target // divisor, rate // divisor
    if max(up, down) > 10_000:
        raise UserError(f"{path}: resampling {rate} Hz to {target} Hz needs a ratio of {up}/{down}; convert the file "
                        f"to {target} Hz first (e.g. sox in.wav -r {target} out.wav)")
    return resample_poly(samples, up, down).astype(np.float32)


def read_mfc(path: str | Path) -> torch.Tensor:
    """A Sphinx .mfc file as (T, 13) float32 frames."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UserError(f"{path}: cannot read the feature file ({error.strerror})") from None
    if len(raw) < 4:
        raise UserError(f"{path}: not a Sphinx .mfc file (it is {len(raw)} bytes; it starts with a 4-byte count)")
    count = int(np.frombuffer(raw[:4], dtype=">i4")[0])
    if count <= 0 or count % MFC_COEFFICIENTS or len(raw) != 4 + 4 * count:
        raise UserError(f"{path}: not a Sphinx .mfc file: its header counts {count} floats in {len(raw) - 4} bytes "
                        f"of data ({MFC_COEFFICIENTS} per frame, 4 bytes each)")
    frames = np.frombuffer(raw[4:], dtype=">f4").reshape(-1, MFC_COEFFICIENTS).astype(np.float32)
    if not np.isfinite(frames).all():
        raise UserError(f"{path}: the feature file holds values that are not finite")
    return torch.from_numpy(frames)


def write_mfc(path: str | Path, frames: torch.Tensor) -> None:
    """(T, 13) frames as a Sphinx .mfc file (what ``read_mfc`` reads)."""
    values = frames.detach().cpu().numpy().astype(">f4").reshape(-1)
    Path(path).write_bytes(np.array([values.size], dtype=">i4").tobytes() + values.tobytes())
