"""Sample conversations of trained chat runs on the first ten DailyDialog test dialogues (not chosen by hand), as
Markdown: every turn after the first, the model's reply to the turns before it beside what the person said.

    python benchmarks/chat_samples.py RUN [RUN ...] [--dialogues 10] [--data-dir ../shared/data/dailydialog] > out.md

Each run answers with its own decoding options (its config.yaml); ``--strategy``, ``--beam-size``, ``--top-p`` and
``--anti-lm`` override them for every run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnnkit.data.dialogues import read_dailydialog
from rnnkit.tasks import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--dialogues", type=int, default=10)
    parser.add_argument("--data-dir", default="../shared/data/dailydialog")
    for option, kind in (("--strategy", str), ("--beam-size", int), ("--top-p", float), ("--anti-lm", float)):
        parser.add_argument(option, type=kind)
    arguments = parser.parse_args()
    overrides = {name: value for name, value in (("strategy", arguments.strategy), ("beam_size", arguments.beam_size),
                                                 ("top_p", arguments.top_p), ("anti_lm", arguments.anti_lm))
                 if value is not None}
    dialogues = read_dailydialog(arguments.data_dir, "test")[: arguments.dialogues]
    models = {Path(run).name: load_run(run) for run in arguments.runs}
    contexts = [" __eou__ ".join(dialogue.utterances[:turn]) for dialogue in dialogues
                for turn in range(1, len(dialogue.utterances))]
    replies = {name: [record["response"] for record in model.predict(contexts, **overrides)]
               for name, model in models.items()}
    row = 0
    for number, dialogue in enumerate(dialogues, start=1):
        print(f"### Test dialogue {number} ({dialogue.where})\n")
        print(f"> **A**: {dialogue.utterances[0]}\n")
        for turn in range(1, len(dialogue.utterances)):
            speaker = "AB"[turn % 2]
            print(f"> **{speaker}** (reference): {dialogue.utterances[turn]}")
            for name in models:
                print(f">\n> *{name}*: {replies[name][row]}")
            print()
            row += 1


if __name__ == "__main__":
    main()
