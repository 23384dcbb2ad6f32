"""Piano rolls: which of the piano's 88 keys sound at each time step, as a binary (T, 88) tensor.

    key:    0 = A0 (MIDI pitch 21) ... 87 = C8 (MIDI pitch 108)
    step:   one frame per time step (a quarter note in the JSB .mat files; ``frame_seconds`` for MIDI)

Sources: the Boulanger-Lewandowski et al. (2012) data sets as MATLAB files (``traindata``,
``validdata``, ``testdata``: each a 1 x N cell of (T_i, 88) arrays; read with scipy), and
standard MIDI files (read and written with pretty_midi, on mido); ``rnnkit.figures`` draws them.
Every file that cannot be read is one ``UserError`` naming it. Writers return bytes, for the caller
to write atomically.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.errors import UserError

KEYS = 88
LOWEST_PITCH = 21  # MIDI pitch of key 0 (A0)
MAT_SPLITS = {"train": "traindata", "validation": "validdata", "test": "testdata"}  # split -> the .mat file's key
MIDI_SUFFIXES = (".mid", ".midi")


def read_mat_splits(path: Path) -> dict[str, list[torch.Tensor]]:
    """The train, validation and test piano rolls of a Boulanger-Lewandowski .mat file, as float (T_i, 88) tensors."""
    import scipy.io  # [tasks] extra

    if not Path(path).is_file():
        raise UserError(f"{path}: no such file; pass --data-dir with the .mat files, or --midi FOLDER")
    try:
        content = scipy.io.loadmat(str(path))
    except Exception as error:  # scipy raises ValueError, TypeError or struct errors on a file that is not .mat
        raise UserError(f"{path}: not a MATLAB .mat file scipy can read ({type(error).__name__}: {error})") from None
    missing = [key for key in MAT_SPLITS.values() if key not in content]
    if missing:
        found = ", ".join(key for key in content if not key.startswith("__")) or "none"
        raise UserError(f"{path}: no {', '.join(missing)} in the file (it has {found}); a piano-roll .mat file holds "
                        f"{', '.join(MAT_SPLITS.values())}, each a cell of (steps x 88) arrays")
    splits = {}
    for split, key in MAT_SPLITS.items():
        rolls = []
        for number, roll in enumerate(content[key].reshape(-1), start=1):
            if roll.ndim != 2 or roll.shape[1] != KEYS:
                raise UserError(f"{path}: {key} item {number} has shape {roll.shape}, expected (steps, {KEYS})")
            rolls.append(torch.from_numpy(roll.astype("float32")).clamp_(0, 1))
        splits[split] = rolls
    return splits


def read_midi(path: Path, frame_seconds: float) -> torch.Tensor:
    """The piano roll of a MIDI file, one frame every ``frame_seconds``: a key is on in a frame where any
    (non-drum) note holds it at the frame's start. Pitches outside the piano's range are dropped."""
    import pretty_midi  # [tasks] extra

    if not Path(path).is_file():
        raise UserError(f"{path}: no such MIDI file")
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # mido raises OSError, EOFError, KeyError, ValueError on a broken file
        raise UserError(f"{path}: not a MIDI file pretty_midi can parse ({type(error).__name__}: {error})") from None
    velocities = midi.get_piano_roll(fs=1.0 / frame_seconds)  # (128 pitches, T) summed velocities, drums left out
    roll = torch.from_numpy(velocities[LOWEST_PITCH : LOWEST_PITCH + KEYS].T.copy()) > 0
    if roll.shape[0] == 0:
        raise UserError(f"{path}: the MIDI file has no notes")
    return roll.float()


def read_midi_folder(folder: Path, frame_seconds: float) -> list[tuple[Path, torch.Tensor]]:
    """Every MIDI file of ``folder`` (sorted by name) and its piano roll."""
    if not folder.is_dir():
        raise UserError(f"--midi: {folder} is not a folder; pass a folder of .mid files")
    paths = sorted(path for path in folder.iterdir() if path.suffix.lower() in MIDI_SUFFIXES)
    if not paths:
        raise UserError(f"--midi: {folder} holds no .mid or .midi file")
    return [(path, read_midi(path, frame_seconds)) for path in paths]


def midi_bytes(roll: torch.Tensor, frame_seconds: float, program: int = 0, velocity: int = 80) -> bytes:
    """A (T, 88) piano roll as the bytes of a one-track MIDI file (General MIDI ``program``, 0 = acoustic grand piano):
    a key held over consecutive frames is one note."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=program)
    on = torch.cat([torch.zeros(1, KEYS), roll.float().cpu() > 0.5, torch.zeros(1, KEYS)]).int()  # (T + 2, 88)
    changes = on[1:] - on[:-1]  # +1 where a key goes down at frame t, -1 where it is released at t
    for key in range(KEYS):
        starts = (changes[:, key] == 1).nonzero().flatten().tolist()
        ends = (changes[:, key] == -1).nonzero().flatten().tolist()
        for start, end in zip(starts, ends):
            instrument.notes.append(pretty_midi.Note(velocity=velocity, pitch=LOWEST_PITCH + key,
                                                     start=start * frame_seconds, end=end * frame_seconds))
    midi.instruments.append(instrument)
    data = io.BytesIO()
    midi.write(data)
    return data.getvalue()


@dataclass
class NextFrames:
    """Pieces as next-frame examples: each piece x_1..x_T gives inputs x_1..x_{T-1} and targets x_2..x_T (the
    convention of the TCN repository the .mat files come from)."""

    inputs: list[torch.Tensor]  # (T_i - 1, 88)
    targets: list[torch.Tensor]  # (T_i - 1, 88)

    @classmethod
    def of(cls, pieces: list[torch.Tensor]) -> NextFrames:
        pieces = [piece for piece in pieces if piece.shape[0] >= 2]  # a one-frame piece has nothing to predict
        return cls([piece[:-1] for piece in pieces], [piece[1:] for piece in pieces])

    @property
    def frames(self) -> int:
        return sum(target.shape[0] for target in self.targets)
