"""Search page: pose a problem, pick models and a strategy, watch the tree grow, inspect nodes."""

from __future__ import annotations

import random
import time

import streamlit as st

from reasoning_viz import resources
from reasoning_viz.inspector import (
    chart_click,
    is_fresh_click,
    pick_node,
    render_answer,
    render_inspector,
    render_moves,
    render_tree,
)
from reasoning_viz.jobs import Job, poll_seconds
from reasoning_viz.layout import tidy_layout
from reasoning_viz.links import resolve_link
from reasoning_viz.orm_form import check_orm
from reasoning_viz.panels import colour_by, help_expander, redecide_panel, tree_legend, truth_summary
from reasoning_viz.preset_form import NO_PRESET, PRESET_NOTE, apply_preset, matching_preset, task_changed
from reasoning_viz.run_models import run_model_state
from reasoning_viz.runinfo import (
    context_problem,
    form_state,
    live_spend,
    run_settings,
    run_status,
)
from reasoning_viz.share import moment_link
from reasoning_viz.sidebar_inputs import budget_inputs, keyed, knob_inputs, model_inputs, problem_inputs
from reasoning_viz.tree_view import tree_view
from reasoning_viz.view_panel import fold_button, view_caption, view_options
from search import Budget, ConfigError, ProblemError, all_strategies, get_strategy, get_task
from search.presets import PRESETS
from search.request import ModelChoice, Recording, RunRequest, launch
from search.tasks import TASKS
from search.tree import Tree


def problem_choices(task_name: str) -> list[str]:
    """Example problems for the picker: the task's example, a few generated ones, Game of 24."""
    task = get_task(task_name)
    choices = [task.example()]
    if task_name != "freeform":
        choices += [task.generate(random.Random(seed), 2).text for seed in range(5)]
    if task_name == "countdown":
        try:
            from search.tasks.game24 import load_puzzles

            choices += [p.text for p in load_puzzles()[900:1000:5]]
        except FileNotFoundError:
            pass
    return list(dict.fromkeys(choices))


def sidebar_form() -> dict | None:
    """The whole setup; returns the request when Start is pressed."""
    with st.sidebar:
        st.header("Setup")
        st.selectbox(
            "Preset",
            [NO_PRESET, *PRESETS],
            key="preset",
            on_change=apply_preset,
            args=(st.session_state,),
            format_func=lambda name: name if name == NO_PRESET else f"{name}: {PRESETS[name].summary}",
            help="A named setting (task, strategy, knobs, models; `python cli.py presets`): choosing one fills "
            "the fields below, which you can still change.",
        )
        if st.session_state.get("preset") in PRESETS:  # the whole description: the menu cuts it
            st.caption(PRESETS[st.session_state["preset"]].summary)
        if st.session_state.get(PRESET_NOTE):
            st.caption(st.session_state[PRESET_NOTE])
        task = st.selectbox(
            "Task", list(TASKS), key="task", on_change=task_changed, args=(st.session_state,),
            help="arith and countdown have exact checkers; freeform is free text. The bundled models follow it.",
        )
        problem = problem_inputs(task, problem_choices(task), _random_problem)
        reference = st.text_input(
            "Known answer (optional)", key="reference", help="Used only to grade the answer, never by the search."
        )
        models = model_inputs(task)
        strategy = st.selectbox(
            "Strategy",
            list(all_strategies()),
            key=keyed("strategy", "beam"),
            help="How the tree is grown; see the Home page for each one.",
        )
        with st.expander("Strategy knobs", expanded=False):
            knobs = knob_inputs(strategy)
        with st.expander("Budget and seed"):
            budget = budget_inputs()
            seed = int(st.number_input("seed", 0, 2**31 - 1, help="Same seed, same tree.", key=keyed("seed", 0)))
        name = st.text_input("Run name (optional)")
        rerun = st.session_state.pop("rerun-pending", False)
        if st.button("▶ Start search", type="primary", width="stretch") or rerun:
            return {
                "task": task,
                "problem": problem,
                "reference": reference.strip() or None,
                "models": models,
                "strategy": strategy,
                "knobs": knobs,
                "budget": budget,
                "seed": seed,
                "name": name or None,
            }
    return None


def run_panel(job: Job) -> None:
    """The opened run's own problem and settings in the sidebar, and a button that re-runs them.

    The first time a session opens a run (a link, a reload) the form is filled with its settings,
    so the sidebar never shows the defaults beside another run's tree."""
    tree = job.tree()
    if not tree.meta:
        return
    models = _recorded_models(job)
    if st.session_state.get("form-run") != job.id:
        st.session_state["form-run"] = job.id
        _fill_form(tree.meta, models)
    with st.sidebar.expander(f"This run ({job.label})", expanded=False):
        st.json({**run_settings(tree.meta), "models": models}, expanded=1)
        st.button(
            "↻ Re-run with these settings",
            on_click=_rerun_with,
            args=(tree.meta, models),
            help="Fill the form with this run's settings and models and start it again.",
        )


def _recorded_models(job: Job) -> dict:
    """The run record's models (with the model choice it was launched with), or for a run that
    is not saved the names its first event gives."""
    if job.sync_run_id() is not None:
        try:
            return dict(resources.run_store().get_run(job.run_id).models)
        except Exception:  # noqa: BLE001 - the names below still say which models ran
            pass
    return dict((job.tree().meta or {}).get("models") or {})


def _fill_form(meta: dict, models: dict) -> None:
    if meta.get("strategy") not in all_strategies() or meta.get("task") not in TASKS:
        return
    knobs = [(name, default) for name, default, _ in get_strategy(meta["strategy"]).config_cls.knobs()]
    model_state = run_model_state(models)
    st.session_state.update({**form_state(meta, knobs), **model_state, "preset": matching_preset(meta, model_state)})
    st.session_state.pop(PRESET_NOTE, None)  # a note about an earlier preset choice


def _rerun_with(meta: dict, models: dict) -> None:
    _fill_form(meta, models)
    st.session_state["rerun-pending"] = True


def _random_problem(task: str) -> str:
    try:
        return get_task(task).generate(random.Random(time.time_ns()), 2).text
    except ProblemError as exc:
        st.sidebar.warning(str(exc))
        return ""


def run_request(form: dict) -> RunRequest:
    """The sidebar's values as the one request every front door builds."""
    m = form["models"]
    if "policy_url" in m and not m["policy_url"]:
        raise ConfigError("Give the policy server's URL (e.g. http://127.0.0.1:8000), or choose another source.")
    check_orm(m)
    return RunRequest(
        form["problem"],
        task=form["task"],
        strategy=form["strategy"],
        knobs=form["knobs"],
        reference=form["reference"],
        budget=Budget(**form["budget"]),
        seed=form["seed"],
        models=ModelChoice(
            m["policy"],
            m["prm"],
            prm_preset=m["preset"],
            device=m["device"],
            trust_remote_code=m["trust_remote_code"],
            chat_template=m.get("chat_template", "auto"),
            system_prompt=m.get("system_prompt"),
            prm_options=m.get("prm_options") or {},
            policy_url=m.get("policy_url"),
            prm_url=m.get("prm_url"),
            orm=m.get("orm"),
            orm_preset=m.get("orm_preset"),
            orm_url=m.get("orm_url"),
        ),
        recording=Recording(name=form["name"]),
    )


def start(form: dict) -> Job | None:
    """Check the request (cheap checks first), load the models, and start the search in the background."""
    try:
        request = run_request(form)
        launched = launch(request, loader=resources.model_loader(), open_store=_open_store)
    except (ProblemError, ConfigError) as exc:
        st.error(f"Cannot start: {exc}")
        return None
    except (OSError, ValueError) as exc:
        st.error(f"Cannot load the models: {exc}\n\nCheck the path or hub id, or use the bundled nano pack.")
        return None
    if too_long := _context_problem(launched):
        if launched.recorder is not None:
            launched.recorder.close()
        st.error(f"Cannot start: {too_long}")
        return None
    label = f"{request.strategy} on {launched.prepared.problem[:40]}"
    return resources.job_registry().start(
        label, launched.run, recorder=launched.recorder, on_done=lambda job: job.sync_run_id()
    )


def _context_problem(launched) -> str | None:
    """Whether the prompt cannot fit the policy's context window (models that say their size)."""
    task, problem, config = launched.prepared.task, launched.prepared.problem, launched.prepared.config
    policy = launched.models.policy
    tokenizer = getattr(policy, "tokenizer", None)
    model_config = getattr(getattr(policy, "model", None), "config", None)
    context = getattr(model_config, "max_position_embeddings", None) or getattr(model_config, "n_positions", None)
    if tokenizer is None or not isinstance(context, int):
        return None
    prompt_tokens = len(tokenizer(task.prompt(problem, []))["input_ids"])
    return context_problem(prompt_tokens, context, config.max_step_tokens or task.max_step_tokens)


def _open_store():
    """The run database, or None (with a warning) when it cannot be opened: the search still runs."""
    try:
        return resources.run_store()
    except Exception as exc:  # noqa: BLE001 - storage problems must not stop a search
        st.warning(f"This run will not be saved: {exc}")
        return None


def current_job() -> Job | None:
    """The search or saved run the URL names (see reasoning_viz.links), or None with a message."""
    registry = resources.job_registry()
    jobs = {job.id: job.sync_run_id() for job in registry.all()}
    try:
        target = resolve_link(dict(st.query_params), jobs, _run_exists)
    except Exception as exc:  # noqa: BLE001 - an unreadable database is shown, not raised
        st.warning(f"Run {st.query_params.get('run')} cannot be shown: {exc}")
        return None
    if target.message:
        st.warning(target.message)
        return None
    if target.job_id is not None:
        return registry.get(target.job_id)
    return _stored_run(target.run_id) if target.run_id is not None else None


def _run_exists(run_id: int) -> bool:
    from storage import StorageError

    try:
        resources.run_store().get_run(run_id)
    except StorageError as exc:
        if str(exc).startswith(f"no run {run_id} "):
            return False
        raise
    return True


def _find_job(job_id: str) -> Job | None:
    """A running job by id, or the saved run this session opened (its id is `run-N`)."""
    stored = st.session_state.get("stored-run")  # (run version, Job), see _stored_run
    if stored is not None and stored[1].id == job_id:
        return stored[1]
    return resources.job_registry().get(job_id)


def _stored_run(run_id: int) -> Job | None:
    """A run that is not running in this server (finished, or from before a restart), shown from
    its saved events by the same live renderer."""
    from storage.replay import run_version

    try:
        store = resources.run_store()
        version = run_version(store.get_run(run_id))  # a run recorded elsewhere grows: key by its version
        cached = st.session_state.get("stored-run")
        if cached is not None and cached[0] == version:
            return cached[1]
        job = Job(id=f"run-{run_id}", label=f"saved run {run_id}", events=store.events(run_id), run_id=run_id)
    except Exception as exc:  # noqa: BLE001 - unknown id or unreadable database
        st.warning(f"Run {run_id} cannot be shown: {exc}")
        return None
    st.session_state["stored-run"] = (version, job)
    return job


def _layout(job: Job, tree, visible: frozenset[int], orientation: str = "auto"):
    """The layout a fresh load of this tree shows (Reingold-Tilford of its visible nodes, or the one
    the chosen orientation needs), computed once per new event count and view; never an
    incremental layout, which drifted into overlaps."""
    cache = st.session_state.setdefault("layouts", {})
    key = (job.id, tree.events_applied, visible, orientation)
    if key not in cache:
        cache.clear()
        cache[key] = tidy_layout(tree, visible, orientation)
    return cache[key]


def live_view(job: Job) -> None:
    tree = job.tree()
    events = job.snapshot()
    if job.sync_run_id() is not None and st.query_params.get("run") != str(job.run_id):
        st.query_params["run"] = str(job.run_id)
    _progress(job, tree)
    if job.run_id is not None and not job.running:
        moment_link(job.run_id)
    if not tree.nodes:  # before the first event the models are still loading: nothing to draw yet
        if job.running:
            st.info("Loading the models and starting the search…")
        return
    clicked = chart_click(tree, f"tree-{job.id}")  # before drawing: the rim must show this click
    _hold_on_click(job, clicked)
    tree, events = _hold(job, tree, events)
    left, right = st.columns([3, 2])
    with right:
        moved = render_moves(tree, events, key=f"moves-{job.id}")
        node_id = pick_node(tree, clicked if clicked is not None else moved, key=f"pick-{job.id}")
    with left:
        painted = colour_by(tree, events, key="colour-by")
        options, orientation = view_options(key="view", tree_key=job.id)
        view = tree_view(tree, options)
        positions = _layout(job, tree, view.visible, orientation)
        render_tree(
            tree, positions, key=f"tree-{job.id}", selected=node_id, paint=painted, view=view, orientation=orientation
        )
        view_caption(view, options, key="view", tree_key=job.id)
        tree_legend(painted)
        render_answer(tree)
        truth_summary(tree)
        redecide_panel(tree, key=f"redecide-{job.id}")
    with right:
        fold_button(tree, view, options, node_id, key="view", tree_key=job.id)
        render_inspector(tree, node_id, events)


def _hold_on_click(job: Job, clicked: int | None) -> None:
    """A fresh click on a node of a growing tree turns "Hold the view" on (before the toggle is
    drawn): a person who clicks wants to read that node while the nodes stay put, and a redraw
    mid-click could open the node that moved under the pointer.  The search goes on; turning the
    toggle off catches up, and the same selection does not turn it on again."""
    if job.running and is_fresh_click(clicked, key=f"pick-{job.id}"):
        st.session_state[f"hold-{job.id}"] = True


def _hold(job: Job, tree, events: list) -> tuple:
    """(tree, events) to draw: while "Hold the view" is on, the tree as it stood when it was
    turned on, so nodes stay where they are while a person clicks them (a fast search redraws
    and moves them twice a second); the search and its counters go on.  Off, or once the search
    has ended: the live tree."""
    key = f"hold-{job.id}"
    held = job.running and st.toggle(
        "⏸ Hold the view", key=key,
        help="Keep drawing the tree as it is now so you can click around it; the search goes on. "
             "Clicking a node turns this on. Turn off to catch up.")
    if not held:
        st.session_state.pop(f"{key}-tree", None)
        return tree, events
    if (frozen := st.session_state.get(f"{key}-tree")) is None:
        frozen = st.session_state[f"{key}-tree"] = Tree.from_events(events)
    st.caption(  # "nodes" as the metric counts them: the root is not one
        f"Held at {len(frozen.nodes) - 1} nodes; the search has {len(tree.nodes) - 1} now. "
        "Turn off Hold the view to catch up."
    )
    return frozen, events[: frozen.events_applied]


def _progress(job: Job, tree) -> None:
    limits = tree.meta.get("budget", {}) if tree.meta else {}
    spent = live_spend(tree, elapsed_s=time.monotonic() - job.started if job.running else None)
    status = run_status(tree, running=job.running, error=job.error)
    cols = st.columns([1, 1, 1, 1, 1])
    cols[0].metric("status", status.label, delta=status.cause, delta_color="off", delta_arrow="off")
    cols[1].metric("nodes", spent["nodes"])
    cols[2].metric("tokens", spent["tokens"])
    cols[3].metric("elapsed", f"{spent['elapsed_s']:.1f}s")
    if job.running and cols[4].button("⏹ Stop", key=f"stop-{job.id}"):
        job.cancel()
    fraction = _fraction({**(tree.spend or {}), **spent, "tokens_generated": spent["tokens"]}, limits, tree)
    if job.running and fraction is not None:
        st.progress(min(fraction, 1.0), text="budget used")
    if status.label == "failed":
        st.error(status.detail)
    elif status.detail:
        st.warning(status.detail)


def _fraction(spent: dict, limits: dict, tree) -> float | None:
    pairs = [
        (spent.get("nodes"), limits.get("max_nodes")),
        (spent.get("tokens_generated"), limits.get("max_tokens")),
        (spent.get("elapsed_s"), limits.get("max_seconds")),
    ]
    fractions = [used / limit for used, limit in pairs if used is not None and limit]
    strategy = (tree.meta or {}).get("strategy")
    progress = get_strategy(strategy).progress if strategy in all_strategies() else None
    if progress is not None and (done := progress(tree)) is not None:
        fractions.append(done)
    return max(fractions) if fractions else None


def page() -> None:
    st.title("Search")
    help_expander()
    job = current_job()
    if job is not None:
        run_panel(job)
    request = sidebar_form()
    if request is not None:
        started = start(request)
        if started is not None:
            st.query_params.clear()
            st.query_params["job"] = started.id
            st.session_state["form-run"] = started.id
            job = started
    if job is None:
        st.info(
            "Set up a problem in the sidebar and press **Start search**. "
            "The tree grows here live; click any node to inspect it."
        )
        return
    every = poll_seconds(resources.job_registry().running()) if job.running else None
    st.session_state["poll-every"] = every
    st.fragment(run_every=every)(_live_fragment)(job.id)


def _live_fragment(job_id: str) -> None:
    job = _find_job(job_id)
    if job is None:
        return
    live_view(job)
    if job.running and poll_seconds(resources.job_registry().running()) != st.session_state.get("poll-every"):
        st.rerun()  # more or fewer searches share the server now: poll at the new pace (one full rerun)
    if not job.running and st.session_state.get("finished-seen") != job_id:
        st.session_state["finished-seen"] = job_id
        st.rerun()  # one full rerun to stop polling now that the search has ended


page()
