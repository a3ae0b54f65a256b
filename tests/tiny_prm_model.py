"""A tiny Qwen2.5-Math-PRM look-alike, as remote code: the transformers side of the pooling-server test.

Same layout as Qwen/Qwen2.5-Math-PRM-7B's `Qwen2ForProcessRewardModel` (a Qwen2 body, then
`score = Linear(h, h) -> ReLU -> Linear(h, 2)` on every position), which vLLM implements
natively under the same architecture name; the test saves this file next to random weights and
loads it with trust_remote_code (auto_map["AutoModel"]), as the real PRM is loaded.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Qwen2Config, Qwen2Model, Qwen2PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput


class Qwen2ForProcessRewardModel(Qwen2PreTrainedModel):
    """Qwen2 body + two-layer score head; `logits`: `[batch, length, num_labels]`."""

    config_class = Qwen2Config

    def __init__(self, config: Qwen2Config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = Qwen2Model(config)
        self.score = torch.nn.Sequential(
            torch.nn.Linear(config.hidden_size, config.hidden_size),
            torch.nn.ReLU(),
            torch.nn.Linear(config.hidden_size, config.num_labels),
        )
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> Any:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        return TokenClassifierOutput(logits=self.score(hidden))
