"""The peer side of bench_peers.py: llm-reasoners 1.0.2's BeamSearch + HFModel on the nano pack.

Runs inside the peer's own virtual environment (torch, transformers, llm-reasoners; nothing of
ThoughtScope is imported).  Reads one JSON job on stdin, writes one JSON result on stdout:

    job:    {"policy", "prm", "prompts": [str], "n", "beam_width", "max_depth", "temperature",
             "max_step_tokens", "seed", "calibration": [scale, bias] | null}
    result: {"rows": [{"expansions", "seconds", "cpu_seconds", "answer"}]}

Glue (llm-reasoners' documented WorldModel/SearchConfig interfaces): a state is the list of
steps so far; `get_actions` samples the next steps with `HFModel.generate` (N at the root, M
per kept beam, `num_return_sequences`, its `max_batch_size` = N) and scores all of them with
the nano likelihood PRM in one batched forward; `reward` reads that score back.  BeamSearch
keeps N/M beams by the last step's score, as ThoughtScope's beam search does.

The PRM score is the nano likelihood PRM's: sigmoid(scale * min log p(token) + bias) over the
path's step tokens (models/likelihood_prm.py), computed here with plain transformers.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
import warnings

import torch
from reasoners import SearchConfig, WorldModel
from reasoners.algorithm import BeamSearch
from reasoners.lm import HFModel
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

ANSWER = re.compile(r"\*{0,2}Answer:\*{0,2}\s*(.*)")


class StepsWorld(WorldModel):
    """A state is the tuple of steps so far; an action is the next step's text."""

    def __init__(self, prompt: str) -> None:
        super().__init__()
        self.prompt = prompt

    def init_state(self) -> tuple[str, ...]:
        return ()

    def step(self, state: tuple[str, ...], action: str) -> tuple[tuple[str, ...], dict]:
        return (*state, action), {}

    def is_terminal(self, state: tuple[str, ...]) -> bool:
        return bool(state) and ANSWER.match(state[-1].strip()) is not None


class SampledSteps(SearchConfig):
    """Actions: steps sampled by the policy (HFModel.generate); reward: the batched PRM score."""

    def __init__(self, lm: HFModel, prm: PRM, prompt: str, job: dict, counter: list[int]) -> None:
        super().__init__()
        self.lm, self.prm, self.prompt, self.job, self.counter = lm, prm, prompt, job, counter
        self.scores: dict[tuple[str, ...], float] = {}

    def get_actions(self, state: tuple[str, ...]) -> list[str]:
        k = self.job["n"] if not state else self.job["beam_width"]
        text = self.prompt + "".join(s + "\n" for s in state)
        out = self.lm.generate([text], max_new_tokens=self.job["max_step_tokens"], do_sample=True,
                               temperature=self.job["temperature"], top_k=0, num_return_sequences=k,
                               eos_token_id="\n", hide_input=True)
        actions = [t.split("\n")[0].strip() for t in out.text]
        paths = [(*state, a) for a in actions]
        for path, score in zip(paths, self.prm.score(self.prompt, paths), strict=True):
            self.scores[path] = score
        self.counter[0] += len(actions)
        return actions

    def fast_reward(self, state: tuple[str, ...], action: str) -> tuple[float, dict]:
        return 0.0, {}

    def reward(self, state: tuple[str, ...], action: str, **kwargs: object) -> tuple[float, dict]:
        return self.scores[(*state, action)], {}


class PRM:
    """The nano likelihood PRM on whole paths in one right-padded batch (last step's score)."""

    def __init__(self, path: str, calibration: list[float] | None) -> None:
        self.tok = PreTrainedTokenizerFast(tokenizer_file=f"{path}/tokenizer.json")
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.calibration = calibration

    @torch.inference_mode()
    def score(self, prompt: str, paths: list[tuple[str, ...]]) -> list[float]:
        start = len(self.tok(prompt)["input_ids"])
        rows = [self.tok(prompt + "".join(s + "\n" for s in p))["input_ids"] for p in paths]
        width = max(map(len, rows))
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        logp = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
        token_lp = logp.gather(-1, ids[:, 1:, None])[..., 0]
        out = []
        for i, r in enumerate(rows):
            low = float(token_lp[i, start - 1: len(r) - 1].min())
            if self.calibration:
                scale, bias = self.calibration
                out.append(1 / (1 + math.exp(-(scale * low + bias))))
            else:
                out.append(math.exp(low))
        return out


def load_policy(path: str, batch: int) -> HFModel:
    """HFModel on CPU, then the checkpoint's own fast tokenizer and special ids (its AutoTokenizer
    load drops the nano tokenizer's spaces and newlines, and it forces pad/bos/eos = 0/1/2)."""
    lm = HFModel(path, path, device="cpu", max_batch_size=batch, max_new_tokens=None)
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{path}/tokenizer.json", pad_token="<pad>",
                                  eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    tok.padding_side = "left"
    lm.tokenizer = tok
    lm.model.config.pad_token_id, lm.model.config.eos_token_id = tok.pad_token_id, tok.eos_token_id
    lm.model.config.bos_token_id = tok.bos_token_id
    lm.model.generation_config.pad_token_id = tok.pad_token_id
    return lm


def main() -> None:
    warnings.filterwarnings("ignore")
    job = json.load(sys.stdin)
    torch.set_num_threads(job.get("threads", 1))
    torch.manual_seed(job["seed"])
    lm = load_policy(job["policy"], job["n"])
    prm = PRM(job["prm"], job.get("calibration"))
    beam = BeamSearch(beam_size=job["n"] // job["beam_width"], max_depth=job["max_depth"],
                      sampling_strategy="argmax", reward_aggregator="last")
    rows = []
    for prompt in ["Problem: Start with 1. Add 1. What is the result?\nSolution:\n", *job["prompts"]]:
        counter = [0]
        start, cpu = time.perf_counter(), time.process_time()
        result = beam(StepsWorld(prompt), SampledSteps(lm, prm, prompt, job, counter))
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        last = result.terminal_state[-1] if result.terminal_state else ""
        match = ANSWER.match(last.strip())
        rows.append({"expansions": counter[0], "seconds": seconds, "cpu_seconds": cpu_seconds,
                     "answer": match.group(1) if match else None})
    json.dump({"rows": rows[1:]}, sys.stdout)  # the first problem warms up


if __name__ == "__main__":
    main()
