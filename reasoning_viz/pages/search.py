"""Search page: pose a problem, pick models and a strategy, watch the tree grow, inspect nodes."""

from __future__ import annotations

import os
import random
import time

import streamlit as st

from models.bundle import PRM_PRESETS
from models.prompting import CHAT_TEMPLATE_MODES
from models.specs import DEVICE_CHOICES
from reasoning_viz import resources
from reasoning_viz.inspector import pick_node, render_answer, render_inspector, render_moves, render_tree
from reasoning_viz.jobs import Job
from reasoning_viz.layout import stable_layout
from search import Budget, ConfigError, ProblemError, all_strategies, get_strategy, get_task
from search.request import ModelChoice, Recording, RunRequest, launch
from search.tasks import TASKS

POLL_SECONDS = 0.5


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


def knob_inputs(strategy: str) -> dict:
    """One widget per knob, chosen by the knob's declared type, with its learner-facing help text."""
    config_cls = get_strategy(strategy).config_cls
    kinds = config_cls.knob_types()
    values = {}
    for name, default, help_text in config_cls.knobs():
        key = f"knob-{strategy}-{name}"
        kind, choices = kinds[name], config_cls.knob_choices(name)
        if choices:
            values[name] = st.selectbox(name, choices, index=choices.index(default), help=help_text, key=key)
        elif kind.base is bool:
            values[name] = st.checkbox(name, value=default, help=help_text, key=key)
        elif kind.optional:
            raw = st.number_input(f"{name} (0 = default)", value=0, step=1, help=help_text, key=key)
            values[name] = kind.base(raw) or None
        elif kind.base is int:
            values[name] = int(st.number_input(name, value=default, step=1, help=help_text, key=key))
        else:
            values[name] = float(st.number_input(name, value=default, step=0.1, help=help_text, key=key))
    return values


def sidebar_form() -> dict | None:
    """The whole setup; returns the request when Start is pressed."""
    with st.sidebar:
        st.header("Setup")
        task = st.selectbox("Task", list(TASKS), help="arith and countdown have exact checkers; freeform is free text.")
        if st.button("🎲 Random problem", help="Draw a fresh problem from the task's generator."):
            st.session_state[f"problem-{task}"] = _random_problem(task)
        picked = st.selectbox("…or pick one", problem_choices(task), key=f"pick-{task}")
        if st.session_state.get(f"picked-{task}") != picked:
            st.session_state[f"picked-{task}"] = picked
            st.session_state[f"problem-{task}"] = picked
        problem = st.text_area("Problem", key=f"problem-{task}", height=100)
        reference = st.text_input("Known answer (optional)", help="Used only to grade the answer, never by the search.")
        models = model_inputs()
        strategy = st.selectbox(
            "Strategy",
            list(all_strategies()),
            index=list(all_strategies()).index("beam"),
            help="How the tree is grown; see the Home page for each one.",
        )
        with st.expander("Strategy knobs", expanded=False):
            knobs = knob_inputs(strategy)
        with st.expander("Budget and seed"):
            budget = {
                "max_nodes": int(
                    st.number_input("max nodes (0 = none)", 0, 100_000, 0, help="Stop after this many tree nodes.")
                )
                or None,
                "max_tokens": int(
                    st.number_input(
                        "max generated tokens (0 = none)",
                        0,
                        10_000_000,
                        0,
                        help="Stop after the policy generated this many tokens.",
                    )
                )
                or None,
                "max_seconds": float(
                    st.number_input(
                        "max seconds (0 = none)", 0.0, 36_000.0, 120.0, help="Stop after this much wall time."
                    )
                )
                or None,
            }
            seed = int(st.number_input("seed", 0, 2**31 - 1, 0, help="Same seed, same tree."))
        name = st.text_input("Run name (optional)")
        if st.button("▶ Start search", type="primary", width="stretch"):
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


def _random_problem(task: str) -> str:
    try:
        return get_task(task).generate(random.Random(time.time_ns()), 2).text
    except ProblemError as exc:
        st.sidebar.warning(str(exc))
        return ""


def model_inputs() -> dict:
    source = st.radio(
        "Models",
        ["Bundled nano pack", "Hugging Face", "Inference server"],
        horizontal=True,
        help="The nano pack runs offline on a laptop CPU; or give your own models, in this process or on a "
        "vLLM / OpenAI-compatible server.",
    )
    if source == "Bundled nano pack":
        return {
            "policy": None, "prm": None, "preset": "nano", "device": None, "trust_remote_code": False,
            "chat_template": "auto",
        }
    if source == "Inference server":
        return server_model_inputs()
    return {
        "policy": st.text_input("Policy (local dir or hub id)", help="A causal LM that writes steps.") or None,
        "prm": st.text_input("PRM (local dir or hub id)", help="A process reward model scoring each step.") or None,
        "preset": st.selectbox("PRM recipe", list(PRM_PRESETS), help="How the PRM reads a path (see README)."),
        "device": st.selectbox("Device", list(DEVICE_CHOICES), help="auto: CUDA, then MPS, then CPU."),
        "chat_template": st.selectbox(
            "Chat template",
            list(CHAT_TEMPLATE_MODES),
            help="auto: write the policy's prompts through its tokenizer's chat template when it has one "
            "(instruct models); off: the task's plain text. The prompt sent is shown at the root node.",
        ),
        "trust_remote_code": st.checkbox(
            "Trust remote code", help="Run custom model code from the hub (off by default)."
        ),
    }


def server_model_inputs() -> dict:
    """Models on an inference server: URL + served name per role, checked against /v1/models at start."""
    return {
        "policy_url": st.text_input("Policy server URL", value=os.environ.get("THOUGHTSCOPE_POLICY_URL", ""),
                                    placeholder="http://127.0.0.1:8000"),
        "policy": st.text_input(
            "Served policy", help="The model name the server lists (a local dir or hub id of the same checkpoint, "
            "whose tokenizer builds the prompts).") or None,
        "prm_url": st.text_input("PRM server URL (empty: the PRM runs here)",
                                 value=os.environ.get("THOUGHTSCOPE_PRM_URL", "")) or None,
        "prm": st.text_input("PRM (local dir or hub id; the served name with a PRM URL)") or None,
        "preset": st.selectbox("PRM recipe", list(PRM_PRESETS), help="How the PRM reads a path (see README)."),
        "device": None,
        "trust_remote_code": False,
        "chat_template": "auto",
    }


def run_request(form: dict) -> RunRequest:
    """The sidebar's values as the one request every front door builds."""
    m = form["models"]
    if "policy_url" in m and not m["policy_url"]:
        raise ConfigError("Give the policy server's URL (e.g. http://127.0.0.1:8000), or choose another source.")
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
            policy_url=m.get("policy_url"),
            prm_url=m.get("prm_url"),
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
    label = f"{request.strategy} on {launched.prepared.problem[:40]}"
    return resources.job_registry().start(
        label, launched.run, recorder=launched.recorder, on_done=lambda job: job.sync_run_id()
    )


def _open_store():
    """The run database, or None (with a warning) when it cannot be opened: the search still runs."""
    try:
        return resources.run_store()
    except Exception as exc:  # noqa: BLE001 - storage problems must not stop a search
        st.warning(f"This run will not be saved: {exc}")
        return None


def current_job() -> Job | None:
    params = st.query_params
    registry = resources.job_registry()
    if "job" in params and (job := registry.get(params["job"])):
        return job
    if "run" in params and params["run"].isdigit():
        return registry.by_run(int(params["run"])) or _stored_run(int(params["run"]))
    return None


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


def live_view(job: Job) -> None:
    tree = job.tree()
    events = job.snapshot()
    if job.sync_run_id() is not None and st.query_params.get("run") != str(job.run_id):
        st.query_params["run"] = str(job.run_id)
    _progress(job, tree)
    if not tree.nodes:  # before the first event the models are still loading: nothing to draw yet
        if job.running:
            st.info("Loading the models and starting the search…")
        return
    positions = st.session_state.setdefault("positions", {}).get(job.id)
    positions = stable_layout(tree, positions)
    st.session_state["positions"][job.id] = positions
    left, right = st.columns([3, 2])
    with left:
        clicked = render_tree(tree, positions, key=f"tree-{job.id}", selected=st.session_state.get(f"pick-{job.id}"))
        st.caption(
            "Colour: PRM score · size: visits · ★ correct ✕ wrong ◆ unchecked · blue: current path · "
            "black: chosen path · red dashes: backtracks · grey: pruned"
        )
        render_answer(tree)
    with right:
        moved = render_moves(tree, events, key=f"moves-{job.id}")
        node_id = pick_node(tree, clicked if clicked is not None else moved, key=f"pick-{job.id}")
        render_inspector(tree, node_id, events)


def _progress(job: Job, tree) -> None:
    spent = tree.spend or {}
    limits = tree.meta.get("budget", {}) if tree.meta else {}
    cols = st.columns([1, 1, 1, 1, 1])
    status = "starting" if job.running and not tree.nodes else tree.status
    cols[0].metric("status", status if not job.error else "failed")
    cols[1].metric("nodes", spent.get("nodes", len(tree) - 1 if tree.nodes else 0))
    cols[2].metric("tokens", spent.get("tokens_generated", 0))
    cols[3].metric("elapsed", f"{spent.get('elapsed_s', 0):.1f}s")
    if job.running and cols[4].button("⏹ Stop", key=f"stop-{job.id}"):
        job.cancel()
    fraction = _fraction(spent, limits, tree)
    if job.running and fraction is not None:
        st.progress(min(fraction, 1.0), text="budget used")
    if job.error:
        st.error(f"The search failed: {job.error}")
    elif tree.status == "failed":
        st.error(f"The search failed: {tree.end_reason}")


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
    request = sidebar_form()
    if request is not None:
        job = start(request)
        if job is not None:
            st.query_params.clear()
            st.query_params["job"] = job.id
    job = current_job()
    if job is None:
        st.info(
            "Set up a problem in the sidebar and press **Start search**. "
            "The tree grows here live; click any node to inspect it."
        )
        return
    st.fragment(run_every=POLL_SECONDS if job.running else None)(_live_fragment)(job.id)


def _live_fragment(job_id: str) -> None:
    job = resources.job_registry().get(job_id)
    if job is None:
        return
    live_view(job)
    if not job.running and st.session_state.get("finished-seen") != job_id:
        st.session_state["finished-seen"] = job_id
        st.rerun()  # one full rerun to stop polling now that the search has ended


page()
