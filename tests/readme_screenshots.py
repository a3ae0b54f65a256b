"""Refresh the README's screenshots in one command, from the bundled nano pack (real models):

    python -m tests.readme_screenshots            # writes docs/screenshots/*.png
    python -m tests.readme_screenshots --out DIR  # anywhere else

It starts `streamlit run app.py` on a free port with a fresh database, then drives headless
Chromium as a person would: a beam search from the Search page (growing, then a node clicked),
"PRM vs exact checker", Re-decide, Replay, a second run for the Runs and Compare pages, a sweep
from the Scaling page, and a 1,000-node beam search (recorded by the engine on the same nano
models) for the big-tree view.  A few minutes on a quiet machine; every picture is 1,500 x 1,000 px.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.test_browser import (
    ROOT,
    _wait_healthy,
    choose,
    chromium_browser,
    free_port,
    metric,
    set_number,
    start,
    wait_ready,
    wait_status,
)

VIEWPORT = {"width": 1500, "height": 1000}
BIG_PROBLEM = (
    "Start with 17. Add 25. Multiply by 3. Subtract 14. Add 6. Subtract 9. Add 4. Subtract 2. What is the result?"
)


def serve(db: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """The app on the nano pack, recording into `db`: (process, base URL)."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    env = dict(os.environ, THOUGHTSCOPE_DB=str(db))
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url, process, log, timeout=120)
    return process, url


def record_big(db: Path, max_nodes: int = 1000) -> int:
    """A 1,000-node beam search on the nano pack, recorded into `db`: its run id."""
    from models.bundle import load_models, prm_spec
    from search import Budget, run_search
    from storage import Store

    models = load_models(spec=prm_spec("nano"))  # as the app's default models
    with Store.open(db) as store:
        recorder = store.recorder(name="big beam (nano pack)")
        run_search(BIG_PROBLEM, task="arith", strategy="beam", models=models, config={"n": 128, "beam_width": 8},
                   budget=Budget(max_nodes=max_nodes), sinks=[recorder])
        recorder.close()
        return recorder.run_id


def settle(page, ms: int = 2500) -> None:
    """Let the page's last rerun finish drawing."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(ms)


def snap(page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"), timeout=120_000)
    print(f"  {name}.png ({(out / f'{name}.png').stat().st_size // 1024} KB)", flush=True)


def small_beam(page, url: str, out: Path | None, beam_width: int) -> str:
    """A small beam search started from the Search page; returns its run id (shots when `out`)."""
    page.goto(url)
    page.get_by_role("button", name=re.compile("Start search")).wait_for(timeout=300_000)
    settle(page)
    knob(page, "n", 4)
    knob(page, "beam_width", beam_width)
    start(page)
    wait_status(page, {"running", "finished"}, timeout=300)
    if out is not None:
        page.wait_for_timeout(1500)
        snap(page, out, "2-search-growing")
    wait_status(page, {"finished"}, timeout=600)
    return re.search(r"run=(\d+)", page.url).group(1)


def knob(page, label: str, value: int) -> None:
    """Set a strategy knob, opening the "Strategy knobs" expander when a rerun has closed it."""
    for _ in range(5):
        if page.get_by_label(label, exact=True).is_visible():
            set_number(page, label, value)
            settle(page, 1000)
            if page.get_by_label(label, exact=True).input_value() == str(value):
                return
        else:
            page.get_by_text("Strategy knobs").first.click()
            page.wait_for_timeout(1000)
    raise RuntimeError(f"could not set the knob {label} to {value}")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="thoughtscope-shots-"))
    db = work / "runs.db"
    process, url = serve(db, work / "streamlit.log")
    failed = ["everything"]
    try:
        with chromium_browser() as chromium:
            wait_ready(chromium, url)
            page = chromium.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(120_000)
            steps = (big_tree, scaling, search_pages)
            failed = [step.__name__ for step in steps if not attempt(step, page, url, db, out)]
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    if failed:
        raise SystemExit(f"no pictures from: {', '.join(failed)} (see above)")


def attempt(step, page, url: str, db: Path, out: Path) -> bool:
    """Run one group of pictures; a failure is printed and the next group still runs."""
    try:
        step(page, url, db, out)
        return True
    except Exception:  # noqa: BLE001 - reported, and the run exits non-zero at the end
        traceback.print_exc()
        return False


def big_tree(page, url: str, db: Path, out: Path) -> None:
    """A 1,000-node beam search on the nano pack, whole and folded at depth 2."""
    big = record_big(db)
    page.goto(f"{url}/?run={big}")
    page.locator(".js-plotly-plot").first.wait_for(timeout=300_000)
    settle(page, 5000)
    to_the_tree(page)
    snap(page, out, "bigtree")
    depth = page.get_by_role("spinbutton", name="Fold at depth")
    depth.fill("2")
    depth.press("Enter")
    settle(page, 5000)
    to_the_tree(page)
    snap(page, out, "bigtree-folded")


def to_the_tree(page) -> None:
    """Scroll the tree's controls to the top of the window, so the picture is mostly the tree."""
    page.get_by_text("Find in steps").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(1000)


def scaling(page, url: str, db: Path, out: Path) -> None:
    """The Scaling page after its default sweep."""
    page.goto(f"{url}/scaling")
    page.get_by_role("button", name=re.compile("Run sweep")).click()
    page.wait_for_url(re.compile(r"sweep=\d+"))
    deadline = time.monotonic() + 1200
    while metric(page, "status") != "finished" and time.monotonic() < deadline:
        time.sleep(1)
    page.goto(page.url)  # opened afresh, the saved-sweep box says "finished" too
    page.locator(".js-plotly-plot .scatterlayer .trace .points path").first.wait_for()
    settle(page, 4000)
    snap(page, out, "scaling-page")


def search_pages(page, url: str, db: Path, out: Path) -> None:
    """Search (growing, a node inspected, PRM vs checker, Re-decide), Replay, Runs and Compare."""
    run = small_beam(page, url, out, beam_width=2)
    settle(page)
    knob(page, "Inspect node id", 5)
    page.locator("h4").filter(has_text=re.compile(r"Node 5 · depth \d+")).first.wait_for()
    settle(page)
    snap(page, out, "3-inspector")
    page.goto(f"{url}/?run={run}")
    page.get_by_text(re.compile("Exact checker vs PRM")).first.wait_for()
    settle(page)
    choose(page, "Colour by", "PRM vs exact checker")
    page.get_by_text(re.compile("green: PRM agrees")).first.wait_for()
    settle(page)
    snap(page, out, "9-prm-vs-checker")
    page.goto(f"{url}/?run={run}")
    page.get_by_text(re.compile("Re-decide this run")).first.click()
    page.locator("p").filter(has_text=re.compile(r"^Would choose:")).first.wait_for()
    choose(page, "Step-score aggregation", "min")
    settle(page)
    page.locator("p").filter(has_text=re.compile(r"^Would choose:")).first.scroll_into_view_if_needed()
    snap(page, out, "10-redecide")
    page.goto(f"{url}/replay?run={run}&event=15")
    page.get_by_text(re.compile(r"^\[15/\d+\]")).wait_for()
    settle(page)
    snap(page, out, "6-replay")
    other = small_beam(page, url, None, beam_width=1)
    page.goto(f"{url}/runs")
    settle(page, 4000)
    snap(page, out, "runs-page")
    page.goto(f"{url}/compare?runs={run},{other}")
    settle(page, 5000)
    snap(page, out, "compare-page")



if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNGs")
    main(parser.parse_args().out)
