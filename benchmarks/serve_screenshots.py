"""Screenshots of the page of a running ``rnnkit serve``, one per model, for docs/figures.

    rnnkit serve --checkpoint runs/sst-... --checkpoint runs/forecast-... ... &
    python benchmarks/serve_screenshots.py --url http://127.0.0.1:8000/ --out docs/figures \
        --input sst="A gripping, beautifully acted film." --input forecast=airline.csv ...

Each model's view gets its input (text, or for a file input a path the browser uploads), its
button is pressed, and the page is saved as serve-TASK.png once the result is drawn. Needs
playwright and Debian's chromium (as the browser test does).
"""

from __future__ import annotations

import argparse
import json
import shutil
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
DRAWN = {"translate": ".output svg.attention", "charlm": ".output pre.generated.done",
         "wordlm": ".output pre.generated.done", "forecast": ".output svg.forecast", "music": ".output a.midi",
         "caption": ".output .attention-grid canvas", "chat": ".chat-log .turn.bot",
         "recommend": ".output ol.items"}  # what shows a view's result is drawn (default: .output .result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--input", action="append", default=[], help="MODEL=TEXT, or MODEL=PATH for a file input")
    parser.add_argument("--option", action="append", default=[], help="MODEL.NAME=VALUE, typed into the option's field")
    arguments = parser.parse_args()
    models = json.load(urllib.request.urlopen(arguments.url + "v1/models"))["models"]
    given = dict(one.split("=", 1) for one in arguments.input)
    fields = [(one.split("=", 1)[0].split(".", 1), one.split("=", 1)[1]) for one in arguments.option]
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
        page = browser.new_page(viewport={"width": 1000, "height": 720})
        problems = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(arguments.url)
        for model in models:
            page.click(f"nav button[data-model='{model['id']}']")
            command = next(iter(model["commands"].values()))
            if model["id"] in given and command["inputs"] == "file":
                page.set_input_files("[name=input]", given[model["id"]])
            elif model["id"] in given:
                page.fill("[name=input]", given[model["id"]])
            for (name, option), value in fields:
                if name == model["id"]:
                    page.fill(f"[name={option}]", value)
            page.click("button.run")
            page.wait_for_selector(f"{DRAWN.get(model['task'], '.output .result')}, .output .error", timeout=120_000)
            path = arguments.out / f"serve-{model['task']}.png"
            page.screenshot(path=str(path), full_page=True)
            print(f"wrote {path}")
        browser.close()
    if problems:
        raise SystemExit(f"the page had errors: {problems}")


if __name__ == "__main__":
    main()
