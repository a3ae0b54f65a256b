"""The one object a strategy works through: it calls the models, counts what it spends, honours
the stop flag and turns everything it learns into events.

Why one context: every strategy then spends compute, records nodes and scores, and stops
at a budget in exactly the same way, so strategies are comparable and stay short.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from search.config import Budget, StrategyConfig
from search.events import EventKind, EventLog
from search.guard import ModelOutputError, bad_number, describe_value
from search.models import Models, Proposal, render_judge, render_prompt
from search.scoring import aggregate, priors_from_logprobs
from search.tasks.base import UNSTORABLE, Task
from search.tree import Node, Tree

#: How a self-evaluation by recomputation (self_check=recompute) starts its words; the UI reads it.
RECOMPUTED = "recomputed: "


def recomputed(judged: dict[str, Any]) -> str | None:
    """The policy's rewrite when `judged` (a SELF_EVALUATED payload or `Node.self_eval`) came from
    self_check=recompute, e.g. ``6 - 11 = -5 (left: -5 3 9)``; None when the policy was asked yes/no."""
    words = str(judged["words"])
    return words.removeprefix(RECOMPUTED) if words.startswith(RECOMPUTED) else None


class SearchStopped(Exception):  # noqa: N818 - control flow, not an error
    """Raised inside a strategy to unwind it; the runner turns it into the closing events."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BudgetExhausted(SearchStopped):
    """A budget limit was reached: the search ends cleanly and still chooses an answer."""


class Cancelled(SearchStopped):
    """Someone set the stop flag."""


@dataclass
class Spend:
    """What the search has spent so far."""

    tokens_generated: int = 0
    prm_tokens: int = 0
    model_calls: int = 0


@dataclass
class SearchContext:
    problem: str
    task: Task
    models: Models
    config: StrategyConfig
    budget: Budget
    seed: int
    reference: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    log: EventLog = field(init=False)
    tree: Tree = field(init=False)
    spend: Spend = field(default_factory=Spend)
    _started: float = field(init=False)
    #: node id -> the probability of the least likely token the policy wrote in that step (with doubt_below)
    least_token_p: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tree = Tree()
        self.log = EventLog(clock=self.clock, sinks=[self.tree.apply])
        self._started = self.clock()

    # ------------------------------------------------------------------ events & limits
    def emit(self, kind: EventKind, **data: Any) -> None:
        self.log.emit(kind, **data)

    @property
    def elapsed(self) -> float:
        return self.clock() - self._started

    @property
    def node_count(self) -> int:
        """Nodes other than the root (what `Budget.max_nodes` limits)."""
        return len(self.tree) - 1

    def raise_if_stopped(self) -> None:
        """Raise Cancelled if the stop flag is set, BudgetExhausted if a limit is used up; called before
        every model call."""
        if self.stop.is_set():
            raise Cancelled("stop requested")
        limits = (
            (self.budget.max_nodes, self.node_count, "max_nodes"),
            (self.budget.max_tokens, self.spend.tokens_generated, "max_tokens"),
            (self.budget.max_seconds, self.elapsed, "max_seconds"),
        )
        for limit, used, name in limits:
            if limit is not None and used >= limit:
                raise BudgetExhausted(f"budget {name}={limit} reached")

    def report_spend(self) -> None:
        """Emit a `spend` event with the counters so far (and what inference servers reported)."""
        server = self.server_usage()
        self.emit(
            EventKind.SPEND,
            tokens_generated=self.spend.tokens_generated,
            prm_tokens=self.spend.prm_tokens,
            model_calls=self.spend.model_calls,
            nodes=self.node_count,
            elapsed_s=round(self.elapsed, 4),
            **({"server": server} if server else {}),
        )

    def server_usage(self) -> dict[str, dict[str, int]]:
        """Per role, what an inference server reported spending (models with a `usage.as_dict()`)."""
        out = {}
        for role in ("policy", "prm", "orm"):
            usage = getattr(getattr(self.models, role), "usage", None)
            if usage is not None and callable(getattr(usage, "as_dict", None)):
                out[role] = usage.as_dict()
        return out

    def _next_seed(self) -> int:
        """A per-call seed derived from the search seed, so a rerun samples identically."""
        return (self.seed * 1_000_003 + self.spend.model_calls) % (2**31 - 1)

    @property
    def step_tokens(self) -> int:
        return self.config.max_step_tokens or self.task.max_step_tokens

    # ------------------------------------------------------------------ tree helpers
    def node(self, node_id: int) -> Node:
        return self.tree.nodes[node_id]

    def steps(self, node_id: int) -> list[str]:
        return self.tree.steps(node_id)

    def prompt(self, node_id: int) -> str:
        """The text the policy continues at this node (its chat rendering when it has one)."""
        return render_prompt(self.models.policy, self.task, self.problem, self.steps(node_id))

    def is_open(self, node_id: int) -> bool:
        """A node the search may still extend: not terminal, not pruned, not at max depth."""
        node = self.node(node_id)
        return not node.terminal and not node.pruned and node.depth < self.config.max_depth

    def prune(self, node_id: int, reason: str) -> None:
        if not self.node(node_id).pruned:
            self.emit(EventKind.PRUNED, node=node_id, reason=reason)

    # ------------------------------------------------------------------ model calls
    def expand(
        self, parents: Sequence[int], k: int | Sequence[int], temperature: float | None = None
    ) -> list[list[int]]:
        """Ask the policy for k next steps under each parent (k may differ per parent).

        Returns the new child ids per parent.  With `Budget.max_nodes` set, proposals past the
        limit are dropped so strategies compare at exactly equal node counts.
        """
        self.raise_if_stopped()
        counts = [k] * len(parents) if isinstance(k, int) else list(k)
        temperature = self.config.temperature if temperature is None else temperature
        proposals = self._propose(parents, counts, temperature)
        room = None if self.budget.max_nodes is None else self.budget.max_nodes - self.node_count
        children: list[list[int]] = []
        for parent, options in zip(parents, proposals, strict=True):
            if room is not None:
                options = options[: max(room, 0)]
                room -= len(options)
            children.append([self._add_node(parent, proposal) for proposal in options])
            if options:
                priors = priors_from_logprobs(_finite_logprobs(options), [o.token_count for o in options])
                self.emit(EventKind.EXPANDED, node=parent, children=children[-1], priors=[round(p, 6) for p in priors])
        new_ids = [c for group in children for c in group]
        if self.config.self_evaluate and new_ids:
            self.self_evaluate(new_ids)
        return children

    def _propose(self, parents: Sequence[int], counts: list[int], temperature: float) -> list[list[Proposal]]:
        """The next steps per parent: one composed answer where the task writes it, else the policy's."""
        composed = [self.composed_answer(p) if count else None for p, count in zip(parents, counts, strict=True)]
        ask = [i for i, text in enumerate(composed) if text is None]
        if len(ask) == len(parents):
            return self._ask_policy(parents, counts, temperature)
        asked = self._ask_policy([parents[i] for i in ask], [counts[i] for i in ask], temperature) if ask else []
        out = [[Proposal(text, 0, ())] if text is not None else [] for text in composed]
        for i, group in zip(ask, asked, strict=True):
            out[i] = group
        return out

    def composed_answer(self, node_id: int) -> str | None:
        """The answer line the task writes from this node's steps (`answer_from_steps`), or None."""
        if not self.config.answer_from_steps:
            return None
        return self.task.compose_answer(self.problem, self.steps(node_id))

    def _ask_policy(self, parents: Sequence[int], counts: list[int], temperature: float) -> list[list[Proposal]]:
        """One batched policy call; unequal counts are sent as repeated prompts with k=1."""
        prompts = [self.prompt(p) for p in parents]
        options = dict(temperature=temperature, max_new_tokens=self.step_tokens, stop=self.task.step_delimiter)
        seed = self._next_seed()
        self.spend.model_calls += 1
        if len(set(counts)) <= 1:
            return self.models.policy.propose(prompts, counts[0] if counts else 0, seed=seed, **options)
        repeated = [prompt for prompt, count in zip(prompts, counts, strict=True) for _ in range(count)]
        flat = [group[0] for group in self.models.policy.propose(repeated, 1, seed=seed, **options)]
        out, start = [], 0
        for count in counts:
            out.append(flat[start : start + count])
            start += count
        return out

    def _add_node(self, parent: int, proposal: Proposal) -> int:
        self.spend.tokens_generated += proposal.token_count
        node_id = len(self.tree)
        text = UNSTORABLE.sub("\ufffd", proposal.text).strip()  # NUL / lone surrogates: U+FFFD
        answer = self.task.extract_answer(text)
        terminal = self.task.is_final(text) or proposal.ended or not text
        bad = bad_number([proposal.logprob])
        if self.config.doubt_below and proposal.token_logprobs and bad is None:  # read only by `_doubt`
            self.least_token_p[node_id] = math.exp(min(proposal.token_logprobs))
        if bad is not None:  # refuse before the node exists, so failing leaves no half-made node
            self.refuse(self.models.policy, "logprob", parent, bad[1], step_text=text)
        self.emit(
            EventKind.NODE_ADDED,
            node=node_id,
            parent=parent,
            text=text,
            token_count=proposal.token_count,
            logprob=None if bad else round(proposal.logprob, 6),
            terminal=terminal,
            answer=answer,
        )
        if bad is not None:
            self.log_unscored(self.models.policy, "logprob", node_id, bad[1])
        if terminal:
            correct = self.task.check_answer(self.problem, answer, self.reference)
            self.emit(EventKind.TERMINAL_REACHED, node=node_id, answer=answer, correct=correct)
        return node_id

    def score(self, node_ids: Sequence[int]) -> None:
        """PRM-score the paths ending at these nodes (one pass per path; cached per node)."""
        todo = [n for n in node_ids if "prm" not in self.node(n).scores]
        if not todo:
            return
        self.raise_if_stopped()
        results = self.models.prm.score(self.problem, [self.steps(n) for n in todo])
        self.spend.model_calls += 1
        for node_id, result in zip(todo, results, strict=True):
            self.spend.prm_tokens += result.tokens_read
            if not self._usable(self.models.prm, "prm", node_id, result.scores, len(self.steps(node_id))):
                continue
            scores = [round(float(s), 6) for s in result.scores]
            self.emit(EventKind.NODE_SCORED, node=node_id, source="prm", value=scores[-1], step_scores=scores)

    def score_outcome(self, node_ids: Sequence[int]) -> None:
        """Outcome-verifier score of whole solutions (the PRM's last step when no ORM is loaded)."""
        verifier = self.models.orm or self.models.prm
        todo = [n for n in node_ids if "orm" not in self.node(n).scores]
        if not todo:
            return
        self.raise_if_stopped()
        results = verifier.score(self.problem, [self.steps(n) for n in todo])
        self.spend.model_calls += 1
        for node_id, result in zip(todo, results, strict=True):
            self.spend.prm_tokens += result.tokens_read
            if not self._usable(verifier, "orm", node_id, result.scores[-1:], 1):
                continue
            value = round(float(result.scores[-1]), 6)
            self.emit(EventKind.NODE_SCORED, node=node_id, source="orm", value=value, step_scores=None)

    def self_evaluate(self, node_ids: Sequence[int]) -> None:
        """Ask the policy whether each node's step is correct; record P(yes) and its words.

        With ``self_check="recompute"`` the policy rewrites each step instead (`recompute`).
        """
        self.raise_if_stopped()
        if self.config.self_check == "recompute":
            self.recompute(node_ids)
            return
        questions = [
            render_judge(self.models.policy, self.task, self.problem, self.steps(n)[:-1], self.node(n).text)
            for n in node_ids
        ]
        verdicts = self.models.policy.judge(questions)
        self.spend.model_calls += 1
        for node_id, question, verdict in zip(node_ids, questions, verdicts, strict=True):
            self.spend.tokens_generated += verdict.token_count
            if not self._usable(self.models.policy, "self_eval", node_id, [verdict.p_yes], 1):
                continue
            self.emit(
                EventKind.SELF_EVALUATED,
                node=node_id,
                question=question,
                p_yes=round(float(verdict.p_yes), 6),
                words=verdict.words,
            )

    def recompute(self, node_ids: Sequence[int]) -> None:
        """SelfCheck-style self-verification (Miao et al. 2023): the policy rewrites each step's claim.

        The policy continues the step's own left-hand side (`Task.recompute_prefix`, e.g. ``6 - 11 =``)
        greedily; the step scores P(yes) 1 when the rewrite claims the same (`Task.same_claim`), 0 when
        it does not (a slip: ``6 - 11 = -4`` against the policy's own ``-5``) or when the policy wrote
        one of the step's tokens at a probability below `doubt_below` (recorded as `doubt`; a number
        not on the list, ``18 - 6`` from ``6 12 12``).  A step with nothing to recompute (an answer
        line, a malformed step) scores 1 and spends nothing: the PRM judges it.  Recorded as
        self-evaluations: `question` is the prompt continued, `words` the rewrite."""
        steps = {n: self.node(n).text for n in node_ids}
        prefixes = {n: self.task.recompute_prefix(text) for n, text in steps.items()}
        asked = [n for n in node_ids if prefixes[n] is not None]
        prompts = [render_prompt(self.models.policy, self.task, self.problem, self.steps(n)[:-1]) + prefixes[n]
                   for n in asked]
        redone = dict(zip(asked, self._greedy(prompts), strict=True)) if asked else {}
        for node_id in node_ids:
            if node_id not in redone:
                self.emit(EventKind.SELF_EVALUATED, node=node_id, question="", p_yes=1.0,
                          words=f"{RECOMPUTED}(nothing: the step makes no claim after '=')")
                continue
            rewrite = f"{prefixes[node_id]}{redone[node_id].text}".strip()
            agrees = self.task.same_claim(steps[node_id], rewrite)
            doubt = self._doubt(node_id) if agrees else None
            self.emit(EventKind.SELF_EVALUATED, node=node_id, question=prompts[asked.index(node_id)],
                      p_yes=1.0 if agrees and doubt is None else 0.0, words=f"{RECOMPUTED}{rewrite}",
                      **({} if doubt is None else {"doubt": doubt}))

    def _doubt(self, node_id: int) -> float | None:
        """P(the least likely token the policy wrote in this step) when below `doubt_below` (token
        confidence, as in DeepConf, Fu et al. 2025), else None (also without token log-probabilities)."""
        least = self.least_token_p.get(node_id)
        return None if least is None or least >= self.config.doubt_below else round(least, 4)

    def _greedy(self, prompts: Sequence[str]) -> list[Proposal]:
        """One greedy step after each prompt (one batched policy call, its tokens counted as generated)."""
        options = dict(temperature=0.0, max_new_tokens=self.step_tokens, stop=self.task.step_delimiter)
        self.spend.model_calls += 1
        groups = self.models.policy.propose(list(prompts), 1, seed=self._next_seed(), **options)
        out = [group[0] if group else Proposal("", 0, ()) for group in groups]
        self.spend.tokens_generated += sum(p.token_count for p in out)
        return out

    def rollout(self, node_id: int, n: int, temperature: float, scorer: str) -> list[float]:
        """Complete the path n times to a final answer; each rollout's value is its outcome.

        `scorer="prm"` grades the finished rollout with the outcome verifier (learned models
        only); `scorer="checker"` uses the task's exact checker (Math-Shepherd labelling).
        """
        self.raise_if_stopped()
        prefix = self.steps(node_id)
        completions = self.models.policy.complete(
            [self.prompt(node_id)] * n,
            temperature=temperature,
            max_new_tokens=self.step_tokens * max(1, self.config.max_depth - len(prefix)),
            seed=self._next_seed(),
        )
        self.spend.model_calls += 1
        finished = [self._finish_rollout(c) for c in completions]
        values = self._rollout_values(node_id, prefix, finished, scorer)
        for (steps, answer, correct), value in zip(finished, values, strict=True):
            self.emit(
                EventKind.ROLLOUT, node=node_id, steps=steps, answer=answer, value=round(value, 6), correct=correct
            )
        return values

    def _finish_rollout(self, completion: Proposal) -> tuple[list[str], str | None, bool | None]:
        self.spend.tokens_generated += completion.token_count
        text = UNSTORABLE.sub("\ufffd", completion.text)
        steps = [s.strip() for s in text.split(self.task.step_delimiter) if s.strip()]
        final = next((i for i, s in enumerate(steps) if self.task.is_final(s)), None)
        steps = steps if final is None else steps[: final + 1]
        answer = self.task.extract_answer(steps[-1]) if steps else None
        return steps, answer, self.task.check_answer(self.problem, answer, self.reference)

    def _rollout_values(
        self, node_id: int, prefix: list[str], finished: list[tuple[list[str], str | None, bool | None]], scorer: str
    ) -> list[float]:
        if scorer == "checker":
            return [1.0 if correct else 0.0 for _, _, correct in finished]
        self.raise_if_stopped()
        verifier = self.models.orm or self.models.prm
        results = verifier.score(self.problem, [prefix + steps for steps, _, _ in finished])
        self.spend.model_calls += 1
        self.spend.prm_tokens += sum(r.tokens_read for r in results)
        return [
            float(r.scores[-1])
            if answer is not None and self._usable(verifier, "rollout", node_id, r.scores[-1:], 1)
            else 0.0
            for r, (_, answer, _) in zip(results, finished, strict=True)
        ]

    # ------------------------------------------------------------------ model numbers
    def _usable(self, model: Any, source: str, node_id: int, values: Sequence[object], expected: int) -> bool:
        """True when `values` are `expected` finite numbers; otherwise refuse them (see search.guard)."""
        bad = bad_number(values)
        if bad is None and len(values) == expected:
            return True
        if bad is None:
            bad = (len(values), f"{len(values)} scores for a path of {expected} steps")
        step = self.node(node_id).depth if source in ("orm", "rollout", "self_eval") else bad[0] + 1
        self.refuse(model, source, node_id, bad[1], step=step)
        self.log_unscored(model, source, node_id, bad[1], step=step)
        return False

    def _refusal(self, model: Any, source: str, node_id: int, value: object, step: int, step_text: str) -> str:
        ids = " -> ".join(str(n.id) for n in self.tree.path(node_id))
        role = {"prm": "PRM", "orm": "outcome verifier", "rollout": "outcome verifier"}.get(source, "policy")
        what = {"logprob": "log-probability", "self_eval": "P(yes)"}.get(source, "score")
        return (
            f"{role} {getattr(model, 'name', type(model).__name__)!r} returned {describe_value(value)} as the "
            f"{what} of step {step} on path {ids} (step: {step_text[:60]!r})"
        )

    def refuse(
        self, model: Any, source: str, node_id: int, value: object, *, step: int | None = None, step_text: str = ""
    ) -> None:
        """Raise ModelOutputError for a bad number unless the config asks to mark it unscored."""
        if self.config.on_bad_number == "fail":
            step = self.node(node_id).depth + (source == "logprob") if step is None else step
            text = step_text or self.node(node_id).text
            raise ModelOutputError(
                self._refusal(model, source, node_id, value, step, text)
                + "; set on_bad_number=unscored to go on without it."
            )

    def log_unscored(self, model: Any, source: str, node_id: int, value: object, *, step: int | None = None) -> None:
        """Record an `unscored` event: the number was refused and the node goes on without it."""
        step = self.node(node_id).depth if step is None else step
        reason = self._refusal(model, source, node_id, value, step, self.node(node_id).text)
        self.emit(
            EventKind.UNSCORED,
            node=node_id,
            source=source,
            model=getattr(model, "name", type(model).__name__),
            step=step,
            value=describe_value(value),
            reason=reason,
        )

    # ------------------------------------------------------------------ scores
    def q_value(self, node_id: int) -> float:
        """Backed-up value of a node: mean, or max when the config backs up by max."""
        return backed_up_value(self.node(node_id), self.config.backs_up_by)

    def step_value(self, node_id: int) -> float:
        """The node's own step score under `config.score_source`."""
        scores = self.node(node_id).scores
        source = self.config.score_source
        if source == "prm":
            return scores.get("prm", 0.0)
        if source == "self_eval":
            return scores.get("self_eval", 0.0)
        return scores.get("prm", 0.0) * scores.get("self_eval", 0.0)

    def path_value(self, node_id: int, how: str) -> float:
        """Aggregate the score source over the steps of the root path (min/prod/last/mean).

        A node whose score was refused (on_bad_number=unscored) is valued 0.
        """
        return path_value(self.tree, node_id, self.config.score_source, how)


def backed_up_value(node: Node, backs_up_by: str) -> float:
    """A node's backed-up value: its max when the strategy backs up by max, else its mean Q."""
    if backs_up_by == "max":
        return node.value_max if node.value_max is not None else 0.0
    return node.q_mean


def path_value(tree: Tree, node_id: int, score_source: str, how: str) -> float:
    """The node's path score: `score_source` (prm, self_eval or prm_x_self_eval) over its root
    path, aggregated by `how`; 0 when the PRM never scored the path.  Shared by the search and by
    re-deciding a stored run (`search.redecide`)."""
    prm_steps = tree.nodes[node_id].step_scores.get("prm", [])
    if score_source != "self_eval" and not prm_steps:
        return 0.0
    if score_source == "prm":
        return aggregate(prm_steps, how)
    self_evals = [n.scores.get("self_eval", 0.0) for n in tree.path(node_id)[1:]]
    if score_source == "self_eval":
        return aggregate(self_evals, how)
    return aggregate([a * b for a, b in zip(prm_steps, self_evals, strict=True)], how)


def _finite_logprobs(options: Sequence[Proposal]) -> list[float]:
    """Log-probabilities for PUCT priors; a refused (non-finite) one counts as the lowest sibling's."""
    values = [o.logprob for o in options]
    finite = [v for v in values if bad_number([v]) is None]
    floor = min(finite) if finite else 0.0
    return [v if bad_number([v]) is None else floor for v in values]
