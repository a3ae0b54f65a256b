"""A lean forward pass for transformers' Qwen2ForCausalLM: the same weights and ops, less Python per call.

Why: the bundled nano policy and PRM are 0.87M-parameter Qwen2 models (4 layers, hidden 128).
At that size a transformers forward is mostly fixed per-call Python cost (output capturing and
kwarg-deprecation decorators, the generic mask builder, dataclass outputs, module hooks): about
8 ms per decode step at one thread, for a few hundred microseconds of arithmetic.  The search
runs hundreds of such forwards per problem, so that cost is most of a search's time.

What it is: `LeanQwen2(model)(input_ids, attention_mask, position_ids, past_key_values)` runs
the model's own parameters through the very tensor operations of transformers'
`Qwen2ForCausalLM.forward` with the `sdpa` attention (transformers 5.x, models/qwen2/
modeling_qwen2.py, masking_utils.sdpa_mask, integrations/sdpa_attention.py), in the same order
and dtypes: RMSNorm in float32, rotary embedding from `inv_freq`, q/k/v projections, the cache
`update`, `scaled_dot_product_attention` with the same boolean mask (or none, with the same
`is_causal`, exactly where transformers skips the mask), o_proj, the SiLU MLP, the final norm and
the LM head over every position.  Logits are therefore bit-identical to transformers' on the same
device (tests/test_lean_qwen2.py checks prefill, cached decode, left padding and grouped-query
attention against transformers), and sampled tokens are the same.  The `DynamicCache` it
updates is transformers' own, so models/kv_cache.py works unchanged.

When: `lean_forward(model)` returns a `LeanQwen2` only for a plain `Qwen2ForCausalLM` on CPU or
CUDA with `sdpa` attention, full attention in every layer, default RoPE, SiLU, tied or untied
head, no hub kernels and no hooks; anything else gets the model itself (transformers' forward).
Set THOUGHTSCOPE_LEAN_FORWARD=0 to always use transformers' forward.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias

#: Environment switch: "0" turns the lean forward off (transformers' forward everywhere).
ENV_SWITCH = "THOUGHTSCOPE_LEAN_FORWARD"


def lean_forward(model: Any) -> Any:
    """`LeanQwen2(model)` where `supports(model)`, else `model` itself (call either the same way)."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return model
    return LeanQwen2(model) if supports(model) else model


def supports(model: Any) -> bool:
    """Whether `model` is a Qwen2ForCausalLM whose forward `LeanQwen2` reproduces exactly (see module doc)."""
    try:
        from transformers.models.qwen2 import modeling_qwen2 as q2
    except ImportError:  # pragma: no cover - transformers without Qwen2
        return False
    if type(model) is not q2.Qwen2ForCausalLM:
        return False
    config = model.config
    rope = getattr(config, "rope_parameters", None) or {}
    modules = list(model.modules())
    return (
        model.device.type in ("cpu", "cuda")
        and getattr(config, "_attn_implementation", None) == "sdpa"
        and not model.training
        and all(kind == "full_attention" for kind in config.layer_types)
        and rope.get("rope_type", "default") == "default"
        and config.hidden_act == "silu"
        and getattr(config, "is_causal", True)
        and not getattr(model, "use_kernels", False)
        and _plain(model.model.rotary_emb, q2.Qwen2RotaryEmbedding)
        and all(_plain(layer.self_attn, q2.Qwen2Attention) and _plain(layer.mlp, q2.Qwen2MLP)
                and _plain(layer.input_layernorm, q2.Qwen2RMSNorm) for layer in model.model.layers)
        and not any(m._forward_hooks or m._forward_pre_hooks for m in modules)
    )


def _plain(module: Any, cls: type) -> bool:
    """`module` is exactly `cls` with the class's own forward (no hub kernel or patch swapped in)."""
    return type(module) is cls and "forward" not in vars(module)


class LeanQwen2:
    """Qwen2ForCausalLM's forward (sdpa, DynamicCache) without transformers' per-call machinery.

    Call with `input_ids` `[batch, q]` (long), `attention_mask` `[batch, past + q]` (1 = token,
    0 = padding), `position_ids` `[batch, q]` and `past_key_values` (a `DynamicCache`, updated in
    place; None: a new one); returns an object with `logits` `[batch, q, vocab]` (the model's
    dtype) and `past_key_values`, as transformers' output has.  Runs under the caller's grad mode
    (call it inside `torch.inference_mode()`, as the backends do).
    """

    def __init__(self, model: Any):
        self.model = model
        self._modules = list(model.modules())
        config = model.config
        body = model.model
        self.embed = body.embed_tokens.weight
        self.padding_idx = body.embed_tokens.padding_idx
        self.layers = [_Layer(layer) for layer in body.layers]
        self.norm, self.eps = body.norm.weight, body.norm.variance_epsilon
        self.lm_head = model.lm_head.weight
        self.inv_freq = body.rotary_emb.inv_freq
        self.rope_scaling = body.rotary_emb.attention_scaling
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.groups = self.heads // self.kv_heads
        self.config = config
        dim = self.layers[0].head_dim if self.layers else 0
        half = dim // 2
        device = self.embed.device
        self.order = torch.cat([torch.arange(half, dim), torch.arange(half)]).to(device)
        self.signs = torch.cat([-torch.ones(dim - half), torch.ones(half)]).to(device=device, dtype=self.embed.dtype)

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = True,
    ) -> SimpleNamespace:
        from transformers import DynamicCache

        if not self.usable():  # hooks added or training mode since: transformers' forward does what they expect
            return self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                              past_key_values=past_key_values, use_cache=use_cache)
        hidden = F.embedding(input_ids, self.embed, self.padding_idx)
        cache = past_key_values if past_key_values is not None else DynamicCache(config=self.config)
        q_len = hidden.shape[1]
        if position_ids is None:
            position_ids = (torch.arange(q_len, device=hidden.device) + cache.get_seq_length()).unsqueeze(0)
        mask = self._mask(attention_mask, cache, hidden)
        cos, sin = self._rotary(hidden, position_ids)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # apply_rotary_pos_emb's unsqueeze, once for all layers
        for index, layer in enumerate(self.layers):
            hidden = layer(self, hidden, cos, sin, mask, cache, index)
        hidden = _rms_norm(hidden, self.norm, self.eps)
        logits = F.linear(hidden, self.lm_head)
        return SimpleNamespace(logits=logits, past_key_values=cache if use_cache else None)

    def usable(self) -> bool:
        """Still exactly the model's forward: not training, and no forward hooks (global or on any module)."""
        from torch.nn.modules import module as torch_module

        return not (
            self.model.training
            or self.order.device != self.embed.device
            or torch_module._global_forward_hooks
            or torch_module._global_forward_pre_hooks
            or any(m._forward_hooks or m._forward_pre_hooks for m in self._modules)
        )

    def _rotary(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Qwen2RotaryEmbedding.forward (default RoPE): cos and sin `[batch, q, head_dim]` in x's dtype."""
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.rope_scaling
        sin = emb.sin() * self.rope_scaling
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)

    def _mask(self, attention_mask: torch.Tensor | None, cache: Any, hidden: torch.Tensor) -> torch.Tensor | None:
        """masking_utils.create_causal_mask -> sdpa_mask for a DynamicCache: `[batch, 1, q, kv]` bool, or None
        exactly where transformers lets sdpa's `is_causal` stand in for it."""
        batch, q_len = hidden.shape[:2]
        q_offset = cache.get_query_offset(0)
        kv_length, kv_offset = cache.get_mask_sizes(q_len, 0)
        padding = None
        if attention_mask is not None:
            padding = attention_mask.to(device=hidden.device, dtype=torch.bool)
            if (extra := kv_length + kv_offset - padding.shape[-1]) > 0:
                padding = F.pad(padding, (0, extra))
        if _causal_skip(padding, q_len, kv_length, q_offset, kv_offset):
            return None
        device = hidden.device
        b = torch.arange(batch, device=device)[:, None, None, None]
        q = (torch.arange(q_len, device=device) + q_offset)[None, None, :, None]
        kv = (torch.arange(kv_length, device=device) + kv_offset)[None, None, None, :]
        mask = kv <= q
        if padding is not None:
            mask = mask & padding[b, kv]
        return mask.expand(batch, -1, q_len, kv_length)


def _causal_skip(padding: torch.Tensor | None, q_len: int, kv_length: int, q_offset: int, kv_offset: int) -> bool:
    """masking_utils._ignore_causal_mask_sdpa (no tracing, full attention)."""
    if padding is not None and padding.shape[-1] > kv_length:
        padding = padding[:, torch.arange(kv_length, device=padding.device) + kv_offset]
    if (q_len == 1 or kv_length == q_len) and (padding is None or _all(padding)):
        return True
    return q_offset == 0 and (padding is None or (_all(padding[:, :q_len]) and _all(~padding[:, q_len:])))


def _all(tensor: torch.Tensor) -> bool:
    """masking_utils.fast_all."""
    return bool(tensor.sum() == tensor.numel())


def _rms_norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Qwen2RMSNorm.forward (its casts skipped where they are no-ops: float32 in and out)."""
    dtype = hidden.dtype
    if dtype is not torch.float32:
        hidden = hidden.to(torch.float32)
    variance = hidden.pow(2).mean(-1, keepdim=True)
    hidden = hidden * torch.rsqrt(variance + eps)
    return weight * (hidden if dtype is torch.float32 else hidden.to(dtype))


def _rotate_half(x: torch.Tensor, order: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """modeling_qwen2.rotate_half, `cat((-x2, x1))`, as one gather and one multiplication by +-1 (exact)."""
    return x.index_select(-1, order) * signs


class _Layer:
    """One Qwen2DecoderLayer's parameters (the module's own tensors, not copies) and its forward."""

    def __init__(self, layer: Any):
        attn, mlp = layer.self_attn, layer.mlp
        self.q_w, self.q_b = attn.q_proj.weight, attn.q_proj.bias
        self.k_w, self.k_b = attn.k_proj.weight, attn.k_proj.bias
        self.v_w, self.v_b = attn.v_proj.weight, attn.v_proj.bias
        self.o_w, self.o_b = attn.o_proj.weight, attn.o_proj.bias
        self.head_dim, self.scaling = attn.head_dim, attn.scaling
        self.gate, self.up, self.down = mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight
        self.gate_b, self.up_b, self.down_b = mlp.gate_proj.bias, mlp.up_proj.bias, mlp.down_proj.bias
        self.norm1, self.eps1 = layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon
        self.norm2, self.eps2 = layer.post_attention_layernorm.weight, layer.post_attention_layernorm.variance_epsilon

    def __call__(
        self, lean: LeanQwen2, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
        mask: torch.Tensor | None, cache: Any, index: int,
    ) -> torch.Tensor:
        residual = hidden
        hidden = residual + self._attention(lean, _rms_norm(hidden, self.norm1, self.eps1), cos, sin, mask, cache,
                                            index)
        residual = hidden
        x = _rms_norm(hidden, self.norm2, self.eps2)
        mlp = F.linear(F.silu(F.linear(x, self.gate, self.gate_b)) * F.linear(x, self.up, self.up_b), self.down,
                       self.down_b)
        return residual + mlp

    def _attention(
        self, lean: LeanQwen2, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
        cache: Any, index: int,
    ) -> torch.Tensor:
        """Qwen2Attention.forward with integrations.sdpa_attention.sdpa_attention_forward."""
        input_shape = x.shape[:-1]
        shape = (*input_shape, -1, self.head_dim)
        query = F.linear(x, self.q_w, self.q_b).view(shape).transpose(1, 2)
        key = F.linear(x, self.k_w, self.k_b).view(shape).transpose(1, 2)
        value = F.linear(x, self.v_w, self.v_b).view(shape).transpose(1, 2)
        query = (query * cos) + (_rotate_half(query, lean.order, lean.signs) * sin)
        key = (key * cos) + (_rotate_half(key, lean.order, lean.signs) * sin)
        key, value = _append(cache, index, key, value)
        q_len = query.shape[2]
        extra: dict[str, Any] = {}
        if lean.groups > 1:
            if mask is None and key.shape[-1] == value.shape[-1] <= 256:
                extra["enable_gqa"] = True
            elif q_len == 1:
                batch, heads, _, dim = query.shape
                query = query.reshape(batch, heads // lean.groups, lean.groups, dim)
                if mask is not None and mask.shape[1] != 1:  # pragma: no cover - our masks have one head
                    mask = mask.reshape(batch, mask.shape[1] // lean.groups, lean.groups, mask.shape[-1])
            else:
                key = _repeat_kv(key, lean.groups)
                value = _repeat_kv(value, lean.groups)
        is_causal = q_len > 1 and mask is None
        if is_causal and key.shape[2] > q_len:
            key, value = key[:, :, :q_len, :], value[:, :, :q_len, :]
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=0.0, scale=self.scaling,
                                             is_causal=is_causal, **extra)
        out = out.reshape(out.shape[0], -1, q_len, value.shape[-1]).transpose(1, 2).contiguous()
        out = out.reshape(*input_shape, -1).contiguous()
        return F.linear(out, self.o_w, self.o_b)


#: Spare positions a grown cache layer keeps after its tokens (decode steps then write in place).
SPARE = 32


def _append(cache: Any, index: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`cache.update(key, value, index)` for a DynamicCache layer, without re-copying the layer every step.

    DynamicLayer.update concatenates (copies the whole layer) on every call.  Here the layer's
    `keys`/`values` become views of the first positions of a buffer with `SPARE` free positions
    after them, and the next call writes into that space: the same values at the same positions,
    so attention reads the same numbers.  Anything that replaced the layer's tensors since (crop,
    repeat, transformers' own update) is seen by comparing storage and shape, and is copied into a
    fresh buffer first.  A layer's first fill goes through transformers' own `update`.
    """
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    layer = layers[index] if layers is not None and index < len(layers) else None
    if type(layer) is not DynamicLayer or not layer.is_initialized or layer.keys.numel() == 0 or cache.offloading:
        return cache.update(key, value, index)
    old_k, old_v = layer.keys, layer.values
    length, more = old_k.shape[-2], key.shape[-2]
    buffers = getattr(layer, "_lean_buffers", None)
    if buffers is None or not _prefix_view(old_k, buffers[0]) or not _prefix_view(old_v, buffers[1]) \
            or length + more > buffers[0].shape[-2]:
        capacity = length + more + SPARE
        buffers = tuple(t.new_empty((*t.shape[:2], capacity, t.shape[-1])) for t in (old_k, old_v))
        buffers[0][:, :, :length] = old_k
        buffers[1][:, :, :length] = old_v
        layer._lean_buffers = buffers
    k_buf, v_buf = buffers
    k_buf[:, :, length : length + more] = key
    v_buf[:, :, length : length + more] = value
    layer.keys, layer.values = k_buf[:, :, : length + more], v_buf[:, :, : length + more]
    return layer.keys, layer.values


def _prefix_view(tensor: torch.Tensor, buffer: torch.Tensor) -> bool:
    """`tensor` is `buffer[:, :, :n]` for some n (same storage start, strides, batch, heads and width)."""
    return (tensor.data_ptr() == buffer.data_ptr() and tensor.stride() == buffer.stride()
            and tensor.shape[:2] == buffer.shape[:2] and tensor.shape[-1] == buffer.shape[-1])


def _repeat_kv(hidden: torch.Tensor, groups: int) -> torch.Tensor:
    """integrations.sdpa_attention.repeat_kv."""
    batch, kv_heads, length, dim = hidden.shape
    hidden = hidden[:, :, None, :, :].expand(batch, kv_heads, groups, length, dim)
    return hidden.reshape(batch, kv_heads * groups, length, dim)
