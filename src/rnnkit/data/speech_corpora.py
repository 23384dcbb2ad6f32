"""Speech corpora as lists of utterances (a recording or feature file and its transcript), and their splits.

- AN4 (``an4/`` in the shared data): ``etc/an4_{train,test}.fileids`` name the Sphinx ``.mfc``
  files under ``feat/``, in the order of ``etc/an4_{train,test}.transcription``'s lines
  (``WORDS (utterance-id)``). There is no official validation set; ``hold_out_speakers``
  takes whole training speakers for one (the test speakers are unseen too).
- FSDD (``fsdd/``): ``recordings/{digit}_{speaker}_{index}.wav``; the transcript is the digit's
  word. The official split puts indices 0-4 in test.
- A manifest of your own: NeMo's JSON lines (``{"audio_filepath": ..., "text": ..., "duration": ...}``)
  or a CSV/TSV with a header naming the path and transcript columns (Common Voice's
  ``path``/``sentence``; ``audio_filepath``/``text``; ``path``/``transcript``). Paths are
  relative to the manifest's folder (Common Voice's also to its ``clips/``).

Transcripts are normalised one way everywhere (``normalise_transcript``): lower case, single spaces.
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.text import read_text_file
from rnnkit.errors import UserError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
PATH_COLUMNS = ("audio_filepath", "path", "file", "filename", "wav")
TEXT_COLUMNS = ("text", "sentence", "transcript", "transcription")


@dataclass(frozen=True)
class Utterance:
    path: Path  # a recording, or a Sphinx .mfc feature file
    text: str  # normalised transcript
    where: str  # where it was listed, for messages ("an4_train.transcription line 3")
    speaker: str = ""


def normalise_transcript(text: str) -> str:
    return " ".join(text.lower().split())


# ----------------------------------------------------------------- AN4
def read_an4(folder: str | Path) -> dict[str, list[Utterance]]:
    """AN4's train and test utterances, their transcripts matched to the listed feature files."""
    folder = Path(folder)
    etc = folder / "etc"
    if not (etc / "an4_train.fileids").is_file():
        raise UserError(f"--data-dir: {folder} has no etc/an4_train.fileids; pass the an4 folder (with etc/ and feat/)")
    return {split: _an4_split(folder, split) for split in ("train", "test")}


def _an4_split(folder: Path, split: str) -> list[Utterance]:
    fileids_path = folder / "etc" / f"an4_{split}.fileids"
    transcription_path = folder / "etc" / f"an4_{split}.transcription"
    fileids = read_text_file(fileids_path).split()
    lines = read_text_file(transcription_path).splitlines()
    if len(fileids) != len(lines):
        raise UserError(f"{transcription_path}: {len(lines)} lines for the {len(fileids)} files of {fileids_path.name}; "
                        "the two must list the same utterances in the same order")
    utterances = []
    for number, (fileid, line) in enumerate(zip(fileids, lines), start=1):
        match = re.fullmatch(r"\s*(.*?)\s*\((\S+)\)\s*", line)
        where = f"{transcription_path} line {number}"
        if match is None or not fileid.endswith(match.group(2)):
            raise UserError(f"{where}: expected 'WORDS (utterance-id)' naming {Path(fileid).name}, got {line!r}")
        speaker = Path(fileid).parent.name
        utterances.append(Utterance(folder / "feat" / f"{fileid}.mfc", normalise_transcript(match.group(1)), where, speaker))
    return utterances


def hold_out_speakers(utterances: list[Utterance], count: int, seed: int) -> tuple[list[Utterance], list[Utterance]]:
    """(kept, held out): whole speakers, drawn in a seeded order, held out until they have ``count`` utterances."""
    speakers = sorted({utterance.speaker for utterance in utterances})
    random.Random(seed).shuffle(speakers)
    held, size = set(), 0
    for speaker in speakers:
        if size >= count:
            break
        held.add(speaker)
        size += sum(utterance.speaker == speaker for utterance in utterances)
    return ([u for u in utterances if u.speaker not in held], [u for u in utterances if u.speaker in held])


# ----------------------------------------------------------------- FSDD
@dataclass(frozen=True)
class DigitRecording:
    utterance: Utterance
    digit: int
    index: int  # 0-49 per digit and speaker; 0-4 are the official test recordings


def read_fsdd(folder: str | Path) -> list[DigitRecording]:
    """Every recording of ``folder/recordings``, in name order."""
    recordings = Path(folder) / "recordings"
    if not recordings.is_dir():
        raise UserError(f"--data-dir: {folder} has no recordings/ folder; pass the fsdd folder")
    found = []
    for path in sorted(recordings.glob("*.wav")):
        match = FSDD_NAME.match(path.name)
        if match is None:
            raise UserError(f"{path}: expected a name {{digit}}_{{speaker}}_{{index}}.wav (FSDD's)")
        digit, speaker, index = int(match.group(1)), match.group(2), int(match.group(3))
        found.append(DigitRecording(Utterance(path, DIGIT_WORDS[digit], str(path), speaker), digit, index))
    if not found:
        raise UserError(f"{recordings}: no .wav recordings")
    return found


# ----------------------------------------------------------------- manifests
def read_manifest(path: str | Path) -> list[Utterance]:
    """The utterances a NeMo JSON-lines manifest or a CSV/TSV lists (the module docstring)."""
    path = Path(path)
    text = read_text_file(path, option="--manifest")
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise UserError(f"{path}: the manifest is empty; list one utterance per line")
    if first.lstrip().startswith("{"):
        return _json_lines(path, text)
    return _table(path, text)


def _json_lines(path: Path, text: str) -> list[Utterance]:
    utterances = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{where}: not JSON ({error.msg}); each line is one object with audio_filepath and text") from None
        missing = [name for name in ("audio_filepath", "text") if not isinstance(entry, dict) or name not in entry]
        if missing:
            raise UserError(f"{where}: the entry lacks {' and '.join(missing)} (NeMo's manifest fields)")
        utterances.append(Utterance(_resolve(path, str(entry["audio_filepath"])), normalise_transcript(str(entry["text"])),
                                    where))
    return utterances


def _table(path: Path, text: str) -> list[Utterance]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in text.splitlines()[0] else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    header = [name.strip().lower() for name in rows[0]]
    path_column = next((header.index(name) for name in PATH_COLUMNS if name in header), None)
    text_column = next((header.index(name) for name in TEXT_COLUMNS if name in header), None)
    if path_column is None or text_column is None:
        raise UserError(f"{path} line 1: expected a header naming the audio path ({', '.join(PATH_COLUMNS)}) and the "
                        f"transcript ({', '.join(TEXT_COLUMNS)}), got {', '.join(header) or 'nothing'}")
    utterances = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(path_column, text_column):
            raise UserError(f"{path} line {number}: {len(row)} fields, fewer than the header's {len(header)}")
        utterances.append(Utterance(_resolve(path, row[path_column].strip()), normalise_transcript(row[text_column]),
                                    f"{path} line {number}"))
    return utterances


def _resolve(manifest: Path, name: str) -> Path:
    """A manifest's path: absolute, relative to its folder, or (Common Voice) to its clips/ folder."""
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate
    beside = manifest.parent / candidate
    clips = manifest.parent / "clips" / candidate
    return clips if not beside.exists() and clips.exists() else beside


@dataclass(frozen=True)
class DigitString:
    """Recordings of single digits joined, with pauses between them: a connected-digit utterance."""

    parts: tuple[Path, ...]
    pauses: tuple[float, ...]  # seconds of near-silence before each part after the first
    text: str

    @property
    def where(self) -> str:
        return " + ".join(path.name for path in self.parts)


def digit_strings(recordings: list[DigitRecording], count: int, seed: int, shortest: int = 2, longest: int = 6,
                  pause: tuple[float, float] = (0.1, 0.5)) -> list[DigitString]:
    """``count`` strings of ``shortest``-``longest`` of ``recordings``, drawn with a seeded generator, with pauses of
    ``pause`` seconds (uniform) between them."""
    generator = random.Random(seed)
    strings = []
    for _ in range(count):
        chosen = [generator.choice(recordings) for _ in range(generator.randint(shortest, longest))]
        pauses = tuple(round(generator.uniform(*pause), 3) for _ in chosen[1:])
        strings.append(DigitString(tuple(r.utterance.path for r in chosen), pauses,
                                   " ".join(DIGIT_WORDS[r.digit] for r in chosen)))
    return strings
