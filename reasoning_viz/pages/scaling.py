"""Scaling page: run a sweep in the background (progress, Stop) or open a saved one; accuracy against
generated tokens per strategy; click a point for the runs behind it, wrong ones first, each a link to
Replay (logic in reasoning_viz.scaling and reasoning_viz.sweep_job)."""

from __future__ import annotations

import streamlit as st

from reasoning_viz import resources
from reasoning_viz.scaling import (
    DEFAULT_PROBLEMS,
    DEFAULT_SIZES,
    DEFAULT_SPECS,
    MAX_PROBLEMS,
    SweepSettings,
    clicked_point,
    parse_sizes,
    parse_specs,
    point_label,
    point_runs,
    progress_line,
    run_link_label,
    sweep_figure,
    sweep_status,
)
from reasoning_viz.sweep_job import start_sweep, sweep_job
from reasoning_viz.text import safe_markdown
from search.evaluate import DEFAULT_SWEEP
from search.request import ModelChoice
from search.tasks import GENERATING_TASKS

POLL_SECONDS = 1.0
REPLAY = "reasoning_viz/pages/replay.py"


def sweep_form() -> SweepSettings | None:
    """The sidebar's "New sweep" form; the settings when submitted (None otherwise)."""
    with st.sidebar.form("new-sweep"):
        st.header("New sweep")
        task = st.selectbox("Task", GENERATING_TASKS, key="sweep-task")
        picked = st.multiselect("Strategies", list(DEFAULT_SWEEP), default=list(DEFAULT_SPECS), key="sweep-specs")
        extra = st.text_area("More strategy specs (one per line)", key="sweep-extra",
                             placeholder="beam:beam_width=2\nbest_of_n:aggregation=min")
        sizes = st.text_input("Sizes (N / simulations)", ",".join(map(str, DEFAULT_SIZES)), key="sweep-sizes")
        problems = st.number_input("Problems", 1, MAX_PROBLEMS, DEFAULT_PROBLEMS, key="sweep-problems")
        seed = st.number_input("Seed (held-out problem stream)", 0, 10**6, 0, key="sweep-seed")
        submitted = st.form_submit_button("▶ Run sweep", type="primary")
    if not submitted:
        return None
    return SweepSettings(task, parse_specs(picked, extra), parse_sizes(sizes), int(problems), int(seed))


def _models():
    loader = resources.model_loader()
    choice = ModelChoice()
    loader.check(choice)
    models = loader.load(choice)
    return models, loader.describe(models)


def start(store, settings: SweepSettings) -> None:
    job = start_sweep(resources.job_registry(), store, settings, _models)
    st.query_params.clear()
    st.query_params["sweep"] = str(job.progress.sweep_id)


def pick_sweep(store) -> int | None:
    """The saved sweep to show: a selectbox kept in the URL (`?sweep=N`)."""
    sweeps = {row["id"]: row for row in store.list_sweeps()}
    asked = st.query_params.get("sweep")
    if asked is not None and (not asked.isdigit() or int(asked) not in sweeps):
        st.warning(f"Sweep {asked} does not exist in this run database; pick a saved one below.")
        asked = None
    if not sweeps:
        st.info("No saved sweeps yet. Set one up in the sidebar and press **Run sweep** (the defaults finish in "
                "a minute or two on the bundled models).")
        return None
    if asked is not None and asked != st.session_state.get("sweep-url"):  # a new link (or a new sweep) wins
        st.session_state["sweep-pick"] = int(asked)
    chosen = st.selectbox("Saved sweep", list(sweeps), key="sweep-pick",
                          format_func=lambda i: f"#{i} · {sweeps[i]['name']}")  # its status: the metric below
    if st.query_params.get("sweep") != str(chosen):
        st.query_params["sweep"] = str(chosen)
        st.query_params.pop("point", None)
    st.session_state["sweep-url"] = str(chosen)
    return chosen


def status_panel(sweep: dict, job) -> None:
    running = job is not None and job.running
    status, sentence = sweep_status(sweep["meta"], running)
    left, right = st.columns([4, 1])
    left.metric("status", status)
    if running:
        if right.button("⏹ Stop", key=f"stop-sweep-{sweep['id']}"):
            job.cancel()
        progress = job.progress
        fraction, text = progress_line(progress.done_runs, progress.total_runs, progress.current)
        st.progress(fraction, text=text)
    if status == "failed":
        st.error(sentence)
    elif status in ("stopped", "interrupted"):
        st.warning(sentence)
    else:
        st.caption(sentence)


def chosen_point(sweep_id: int, points: list[dict]) -> int | None:
    """The point whose runs are listed: a fresh click on the chart (read before the chart is drawn,
    as the tree views do), else the picker below it, kept in the URL (`?point=K`)."""
    key = f"point-pick-{sweep_id}"
    clicked = clicked_point(st.session_state.get(f"sweep-chart-{sweep_id}"), len(points))
    fresh = clicked is not None and clicked != st.session_state.get(f"{key}-last-click")
    st.session_state[f"{key}-last-click"] = clicked
    asked = st.query_params.get("point")
    if fresh:
        st.session_state[key] = clicked
    elif key not in st.session_state and asked is not None and asked.isdigit() and int(asked) < len(points):
        st.session_state[key] = int(asked)
    if st.session_state.get(key) is not None and st.session_state[key] >= len(points):
        st.session_state[key] = None
    return st.session_state.get(key)


def point_panel(store, sweep: dict, index: int | None) -> None:
    points = sweep["meta"]["points"]
    st.selectbox("Point (or click one on the chart)", [None, *range(len(points))], key=f"point-pick-{sweep['id']}",
                 format_func=lambda i: "—" if i is None else point_label(points[i]))
    if index is None:
        return
    if st.query_params.get("point") != str(index):
        st.query_params["point"] = str(index)
    point = points[index]
    runs = {run.id: run for run in store.list_runs(sweep_id=sweep["id"], limit=None)}
    rows = point_runs(point, runs, sweep["meta"].get("problems", []))
    wrong = sum(row["wrong"] for row in rows)
    st.subheader(f"{point['spec']} @ {point['size']}: {len(rows) - wrong} right, {wrong} wrong")
    st.caption("Each run opens in Replay; wrong answers first.")
    for row in rows:
        if row["run"] is None:
            st.text(f"{row['verdict']} · problem {row['problem']}: its run was {row['verdict']}")
            continue
        st.page_link(REPLAY, label=safe_markdown(run_link_label(row)), query_params={"run": str(row["run"])},
                     icon="❌" if row["wrong"] else "✅")


def sweep_view(sweep_id: int) -> None:
    store = resources.run_store()
    sweep = store.get_sweep(sweep_id)
    job = sweep_job(resources.job_registry(), store.key, sweep_id)
    status_panel(sweep, job)
    _end_polling(job)
    points = sweep["meta"].get("points", [])
    if not points:
        if job is not None and job.running:
            st.info("The first point appears here when all its problems are done.")
        return
    index = chosen_point(sweep_id, points)
    figure = sweep_figure(points, selected=index, title=f"Sweep {sweep_id}: accuracy vs generated tokens "
                          f"({len(sweep['meta'].get('problems', []))} problems)")
    st.plotly_chart(figure, key=f"sweep-chart-{sweep_id}", on_select="rerun", selection_mode="points",
                    width="stretch")
    point_panel(store, sweep, index)


def _end_polling(job) -> None:
    """One full rerun when a sweep this session watched running has ended, to stop polling."""
    if job is None:
        return
    watched = f"sweep-watched-{job.id}"
    if job.running:
        st.session_state[watched] = True
    elif st.session_state.pop(watched, False):
        st.rerun()


def page() -> None:
    st.title("Scaling")
    st.caption("Accuracy against generated tokens per strategy over held-out problems (the CLI's `sweep`). "
               "Every search is saved: click a point to open the runs behind it.")
    try:
        store = resources.run_store()
    except Exception as exc:  # noqa: BLE001 - StorageError: shown plainly
        st.error(f"Cannot open the run database: {exc}")
        return
    try:
        settings = sweep_form()
        if settings is not None:
            start(store, settings)
    except Exception as exc:  # noqa: BLE001 - ConfigError, StorageError: nothing started, the form keeps its values
        st.error(f"The sweep was not started: {exc}")
    try:
        sweep_id = pick_sweep(store)
    except Exception as exc:  # noqa: BLE001 - StorageError
        st.error(f"Cannot read the saved sweeps: {exc}")
        return
    if sweep_id is None:
        return
    job = sweep_job(resources.job_registry(), store.key, sweep_id)
    running = job is not None and job.running
    st.fragment(run_every=POLL_SECONDS if running else None)(sweep_view)(sweep_id)


page()
