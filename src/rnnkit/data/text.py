"""Reading text corpora: the bundled default and any UTF-8 file, with checks that explain themselves."""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

from rnnkit.errors import UserError

BUNDLED_CORPUS = "tinyshakespeare.txt"


def bundled_corpus_text() -> str:
    """Tiny Shakespeare, shipped inside the package (see data/corpus/PROVENANCE.md)."""
    return resources.files("rnnkit.data.corpus").joinpath(BUNDLED_CORPUS).read_text(encoding="utf-8")


def read_text_file(path: str | Path, option: str = "--data") -> str:
    """The content of a UTF-8 text file (gzip-compressed if its name ends in .gz), or a UserError saying why it
    cannot be used (``option`` named it)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data file {path} does not exist: pass the path of a UTF-8 text file to {option}")
    if not path.is_file():
        raise UserError(f"data file {path} is not a regular file: pass the path of a UTF-8 text file to {option}")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise UserError(f"data file {path} is not a readable gzip file ({error}): pass the file uncompressed "
                            "or compressed again with gzip") from None
    if not raw:
        raise UserError(f"data file {path} is empty: pass a UTF-8 text file with some text in it")
    if b"\x00" in raw[:1 << 20]:
        raise UserError(f"data file {path} looks binary (it contains NUL bytes): pass a UTF-8 text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise UserError(
            f"data file {path} line {line} is not valid UTF-8 (byte {error.start}: {raw[error.start:error.start + 1]!r}): "
            "convert it with e.g. 'iconv -t UTF-8'"
        ) from None
