"""Deterministic scripted policy and PRM for engine unit tests (arith problems only).

Why scripted rather than random: golden-tree tests compare whole event logs exactly, so every
proposal and score must follow from (prompt, seed) alone.  The script still behaves like a
weak model: it slips on some steps, carries its slips forward, is less confident when it
slips, and the PRM mostly (not always) notices.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from search.models import Judgement, Proposal, StepScores
from search.tasks.arith import ArithTask, apply, parse_problem, parse_step

_ARITH = ArithTask()


def split_prompt(prompt: str) -> tuple[str, list[str]]:
    """Recover (problem, steps) from the nano prompt format."""
    head, _, body = prompt.partition("\nSolution:\n")
    problem = head.removeprefix("Problem: ")
    return problem, [line for line in body.split("\n") if line]


def _unit(*parts: object) -> float:
    """A reproducible number in [0, 1) from the parts (string seeds hash with sha512)."""
    return random.Random("|".join(map(str, parts))).random()


class ScriptedPolicy:
    """Writes arith steps, slipping with `slip_rate` when sampling and `greedy_slip_rate` at T=0."""

    def __init__(self, slip_rate: float = 0.3, greedy_slip_rate: float = 0.4, name: str = "scripted-policy"):
        self.slip_rate = slip_rate
        self.greedy_slip_rate = greedy_slip_rate
        self.name = name

    def next_step(self, prompt: str, draw: float, rate: float) -> tuple[str, bool]:
        """The next step after the prompt's steps, and whether it is a slip (when draw < rate)."""
        problem, steps = split_prompt(prompt)
        parsed = parse_problem(problem)
        value = parsed.start
        if steps:
            last = parse_step(steps[-1])
            value = last[3] if last else value
        if len(steps) >= len(parsed.ops):
            return f"Answer: {value}", False
        symbol, operand = parsed.ops[len(steps)]
        result = apply(value, symbol, operand) if symbol != "/" or value % operand == 0 else value // operand
        slipped = draw < rate
        if slipped:
            result += 1 + int(_unit(prompt, draw) * 9) * (1 if _unit(draw) < 0.5 else -1)
        return f"{value} {symbol} {operand} = {result}", slipped

    def _proposal(self, prompt: str, temperature: float, *draw_parts: object) -> Proposal:
        """Greedy draws depend on the prompt alone; sampled draws also on seed and index."""
        if temperature == 0:
            text, slipped = self.next_step(prompt, _unit(prompt), self.greedy_slip_rate)
        else:
            text, slipped = self.next_step(prompt, _unit(*draw_parts, prompt), self.slip_rate)
        tokens = len(text.split()) + 1
        per_token = -0.6 if slipped else -0.05 - 0.1 * _unit(prompt, text)
        return Proposal(text=text, token_count=tokens, token_logprobs=(round(per_token, 6),) * tokens)

    def propose(
        self, prompts: Sequence[str], k: int, *, temperature: float, max_new_tokens: int, stop: str, seed: int
    ) -> list[list[Proposal]]:
        return [
            [self._proposal(prompt, temperature, seed, index, j) for j in range(k)]
            for index, prompt in enumerate(prompts)
        ]

    def complete(self, prompts: Sequence[str], *, temperature: float, max_new_tokens: int, seed: int) -> list[Proposal]:
        results = []
        for index, prompt in enumerate(prompts):
            lines, tokens, logprobs = [], 0, []
            for depth in range(64):
                step = self._proposal(prompt, temperature, "rollout", seed, index, depth)
                lines.append(step.text)
                tokens += step.token_count
                logprobs += step.token_logprobs
                prompt += step.text + "\n"
                if step.text.startswith("Answer:"):
                    break
            results.append(Proposal("\n".join(lines), tokens, tuple(logprobs), ended=True))
        return results

    def judge(self, questions: Sequence[str]) -> list[Judgement]:
        verdicts = []
        for question in questions:
            context, _, rest = question.rpartition("Check: ")
            step = rest.split("\n")[0]
            problem, steps = split_prompt(context)
            good = _ARITH.check_step(problem, steps, step)
            p_yes = 0.7 + 0.25 * _unit(question) if good else 0.05 + 0.4 * _unit(question)
            words = "Yes, the step is right." if p_yes >= 0.5 else "No, the arithmetic is off."
            verdicts.append(Judgement(round(p_yes, 6), words, token_count=len(words.split())))
        return verdicts


class ScriptedPRM:
    """Scores each step high when it is on the correct chain, low otherwise, with noise."""

    def __init__(self, noise: float = 0.3, name: str = "scripted-prm"):
        self.noise = noise
        self.name = name

    def score(self, problem: str, paths: Sequence[Sequence[str]]) -> list[StepScores]:
        out = []
        for steps in paths:
            scores = []
            for i, step in enumerate(steps):
                good = _ARITH.check_step(problem, list(steps[:i]), step)
                jitter = self.noise * _unit(problem, i, step)
                scores.append(round(0.95 - jitter if good else 0.05 + jitter, 6))
            tokens = len(problem.split()) + sum(len(s.split()) + 1 for s in steps)
            out.append(StepScores(tuple(scores), tokens))
        return out


class EagerPolicy(ScriptedPolicy):
    """A scripted policy that finishes often: of every `every` proposals, `finish` write the answer at once.

    Models the field report behind search-and-learn's "N beams yield at most N solutions": a
    policy that jumps to `Answer:` floods a beam with completed solutions in one round.  The
    early answer is the current running value (right only when the chain is already done).
    """

    def __init__(self, finish: int = 3, every: int = 4, name: str = "eager-policy"):
        super().__init__(name=name)
        self.finish, self.every = finish, every

    def propose(
        self, prompts: Sequence[str], k: int, *, temperature: float, max_new_tokens: int, stop: str, seed: int
    ) -> list[list[Proposal]]:
        out = super().propose(prompts, k, temperature=temperature, max_new_tokens=max_new_tokens, stop=stop, seed=seed)
        for index, group in enumerate(out):
            for j, proposal in enumerate(group):
                if (index + j) % self.every < self.finish and not proposal.text.startswith("Answer:"):
                    value = proposal.text.rsplit("=", 1)[-1].strip()
                    group[j] = Proposal(f"Answer: {value}", 3, (-0.1, -0.1, -0.1))
        return out
