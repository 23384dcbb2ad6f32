"""The best and worst test captions of a caption run, as Markdown, and attention figures for some of them.

    python benchmarks/caption_report.py RUN [--count 20] [--figures DIR --drawn 2] > out.md

Every test image's beam caption (the run folder's ``test_captions.jsonl``) is scored alone by CIDEr-D
(pycocoevalcap's scorer over the whole test set, so the document frequencies are the test set's); the ``--count``
highest and lowest are listed, ties in test order. With ``--figures``, ``rnnkit predict --show-attention`` draws the
first ``--drawn`` of the best and of the worst into DIR.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rnnkit.data.captions import caption_text, caption_words
from rnnkit.metrics import scored_words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--figures")
    parser.add_argument("--drawn", type=int, default=2)
    arguments = parser.parse_args()
    from pycocoevalcap.cider.cider import Cider

    records = [json.loads(line) for line in (Path(arguments.run) / "test_captions.jsonl").read_text().splitlines()]
    words = lambda text: " ".join(scored_words(caption_words(text)))  # noqa: E731
    _, scores = Cider().compute_score({row: [words(text) for text in record["references"]]
                                       for row, record in enumerate(records)},
                                      {row: [words(record["beam"])] for row, record in enumerate(records)})
    order = sorted(range(len(records)), key=lambda row: (-scores[row], row))
    chosen = {"best": order[: arguments.count],
              "worst": sorted(range(len(records)), key=lambda row: (scores[row], row))[: arguments.count]}
    for name, rows in chosen.items():
        print(f"#### The {arguments.count} {name} test captions (beam, per-image CIDEr-D)\n")
        print("| image | reference | caption | CIDEr-D |\n|---|---|---|---|")
        for row in rows:
            record = records[row]
            text = lambda caption: caption_text(caption_words(caption))  # noqa: E731 (runs from before caption_text)
            print(f"| `{Path(record['image']).parent.parent.name}/{Path(record['image']).name}` | "
                  f"{' / '.join(map(text, record['references']))} | {text(record['beam'])} | {100 * scores[row]:.1f} |")
        print()
    if arguments.figures:
        Path(arguments.figures).mkdir(parents=True, exist_ok=True)
        for name, rows in chosen.items():
            for rank, row in enumerate(rows[: arguments.drawn], start=1):
                out = Path(arguments.figures) / f"caption-attention-{name}-{rank}.png"
                subprocess.run([sys.executable, "-m", "rnnkit", "predict", "--checkpoint", arguments.run,
                                records[row]["image"], "--show-attention", str(out)], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                print(f"![{name} {rank}: {records[row]['beam']}]({out})\n")


if __name__ == "__main__":
    main()
