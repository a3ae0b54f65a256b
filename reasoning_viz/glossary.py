"""One sentence per term a class meets in the app (the in-app help expander shows them in order).

Sources: PRM — Lightman et al. 2023, "Let's Verify Step by Step"; N and M — the beam search of
HuggingFace search-and-learn; UCT — Kocsis & Szepesvári 2006; PUCT — Silver et al. 2017 (AlphaZero);
Math-Shepherd (Wang et al. 2023) for the step checker's notion of a good step; Tree of Thoughts —
Yao et al. 2023; value network — Silver et al. 2017.
"""

from __future__ import annotations

GLOSSARY: dict[str, str] = {
    "PRM (process reward model)": "a second model that reads the solution so far and gives each step a score "
    "between 0 and 1: its estimate that the step is correct.",
    "N and M": "beam search writes N candidate steps per round and keeps the best N/M of them; each kept beam "
    "then gets M new continuations, so N is the width of the search and M how many tries each survivor gets.",
    "UCT": "the MCTS rule that picks which child to visit: its average value Q plus an exploration bonus "
    "c·√(ln N / n) that grows for children visited rarely (N: the parent's visits, n: the child's).",
    "PUCT": "AlphaZero's variant of UCT: the bonus c·P·√N / (1 + n) is also scaled by the prior P, so steps "
    "the policy found likely are tried first.",
    "prior": "how likely the policy model itself thought a step was, compared with its siblings (a softmax over "
    "their length-normalised log-probabilities); PUCT uses it to decide what to try first.",
    "value": "how good the search judges a position when it first evaluates it: the PRM's path score, the "
    "average outcome of rollouts, or a mix of the two.",
    "Q": "the average of all values backed up through a node so far; it changes as more simulations pass by.",
    "visits": "how many MCTS simulations went through a node; a big marker was explored a lot.",
    "aggregation (min / prod / last / mean)": "how a path's step scores become one score: its weakest step, "
    "the product, the last step's score, or the average.",
    "answer rule": "how the final answer is picked among the finished solutions: argmax (best path score), "
    "majority (one vote per solution) or prm_vote (votes weighted by path score); MCTS also has most_visits "
    "and best_value.",
    "self-evaluation": "the policy is asked 'is this step correct?' and its probability of answering yes is "
    "recorded (self_check=ask); or, with self_check=recompute, the policy rewrites the step from its last '=' "
    "and the step scores 1 if it writes the same result, 0 if not: a slip the policy itself would not make "
    "again (SelfCheck, Miao et al. 2023); with doubt_below, also 0 when the policy wrote one of the step's "
    "tokens with less than that probability (it doubted its own move).",
    "rollout": "finishing a solution quickly from a node and grading the answer, to estimate how promising "
    "the node is.",
    "Tree of Thoughts (BFS)": "the search of Yao et al. 2023 on the Game of 24: from each kept state the "
    "policy proposes several next moves, a model values every new state, and only the best few (the breadth, "
    "5 in the paper) are kept for the next move.",
    "value model": "a PRM trained on exact labels instead of a person's: on countdown it reads a move and "
    "says whether it is legal and the target can still be reached from the numbers left (AlphaZero's value "
    "network); its score is shown where the app says PRM score.",
    "exact checker": "on arith and countdown the task can check every step itself; a step counts as right only "
    "when the right answer is still reachable from it, so the app can show where the PRM was wrong.",
}
