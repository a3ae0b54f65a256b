"""The one place that turns a spec into a loaded model: backend and kind are chosen here.

`load_policy(PolicySpec)` and `load_prm(RewardModelSpec)` pick the inference-server backend when
the spec has a `url` and the in-process transformers backend otherwise; for reward models the
kind (tag / head / likelihood) picks the class.  Each backend module only knows its own kind.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

from search.models import Policy, RewardModel

from .device import pick_device, pick_dtype
from .hf_policy import HFPolicy
from .hf_prm import HFPRM, head_loader
from .likelihood_prm import LikelihoodPRM
from .loading import ModelLoadError, distinct_pair, from_pretrained, load_model, load_tokenizer, resolve_source
from .prm_fit import REWARD_HEAD, VALUE_HEAD, check_fit, inspect_checkpoint
from .prm_layouts import HEAD_LAYOUT, TAG_LAYOUT
from .prompting import ChatFormat, ChatTemplateError, chat_format
from .reward_readers import ChatTagPRM, HeadModel, OutcomeRM, ValueHeadPRM, read_head
from .specs import PolicySpec, RewardModelSpec


def load_policy(spec: PolicySpec) -> Policy:
    """The policy `spec` describes (an `HFPolicy` in process; a server policy when `spec.url` is set).

    Raises `ModelLoadError` (a ValueError) with what to check when the checkpoint or server
    cannot be used.  Every backend gets its chat format here (`attach_chat`), so both write the
    same prompt text and `models.prompting.prompt_token_ids` the same ids.
    """
    if spec.url:
        from .server_policy import load_server_policy

        return attach_chat(load_server_policy(spec), spec)
    return attach_chat(load_hf_policy(spec), spec)


def load_hf_policy(spec: PolicySpec) -> HFPolicy:
    """A causal LM (local directory or hub id) as the in-process transformers policy."""
    name = spec.name_or_path
    source, local = resolve_source(name)
    device = pick_device(spec.device)
    dtype = pick_dtype(device, spec.dtype)
    trust_remote_code = spec.trust_remote_code
    from_pretrained(AutoConfig, source, local, name, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(source, local, name, trust_remote_code)
    model = load_model(
        AutoModelForCausalLM, source, local, name, device=device, dtype=dtype, trust_remote_code=trust_remote_code
    )
    return HFPolicy(
        model, tokenizer, name=name, local=local, trust_remote_code=trust_remote_code, yes_token=spec.yes_token,
        no_token=spec.no_token, max_batch=spec.max_batch, kv_reuse=spec.kv_reuse,
        kv_cache_entries=spec.kv_cache_entries, kv_cache_bytes=spec.kv_cache_bytes,
    )


def attach_chat(policy: Any, spec: PolicySpec) -> Any:
    """Give a loaded policy of any backend its chat format (`policy.chat`) from `spec.chat_template`.

    With a chat format the engine writes the policy's prompts through its tokenizer's chat
    template (search.models.render_prompt) and P(yes) is read from the format's yes/no tokens
    (`yes_id`/`no_id`) at the start of the assistant's reply.  Raises ModelLoadError for
    chat_template="on" without a template.
    """
    chat = policy_chat_format(policy.tokenizer, spec)
    policy.chat = chat
    if chat is not None:
        policy.yes_id, policy.no_id = distinct_pair(policy.tokenizer, chat.yes_token, chat.no_token, "yes/no token")
    return policy


def policy_chat_format(tokenizer: Any, spec: PolicySpec) -> ChatFormat | None:
    """The spec's chat format for this tokenizer; a misfit is a ModelLoadError naming the option."""
    try:
        return chat_format(tokenizer, spec.chat_template, spec.name_or_path, spec.system_prompt)
    except ChatTemplateError as err:
        raise ModelLoadError(str(err)) from err


def load_prm(spec: RewardModelSpec) -> RewardModel:
    """The reward model `spec` describes (kind and backend chosen from it; see `RewardModelSpec`).

    Raises ValueError for an unknown kind and `ModelLoadError` for a checkpoint or server that
    cannot be used.
    """
    spec.check()
    if spec.url:
        from .server_prm import load_server_prm

        return load_server_prm(spec)
    return load_hf_prm(spec)


def load_hf_prm(spec: RewardModelSpec) -> RewardModel:
    """An in-process transformers reward model of `spec.kind`, after checking the spec fits it.

    Raises ModelLoadError (before the weights load) when the preset does not fit the checkpoint
    (models/prm_fit.py), naming the preset that does.
    """
    spec.check()
    name, trust_remote_code = spec.name_or_path, spec.trust_remote_code
    source, local = resolve_source(name)
    device = pick_device(spec.device)
    dtype = pick_dtype(device, spec.dtype)
    config = from_pretrained(AutoConfig, source, local, name, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(source, local, name, trust_remote_code)
    check_fit(spec.preset, spec, inspect_checkpoint(name, local, config, tokenizer), _presets())
    common: dict[str, Any] = dict(
        name=name, local=local, trust_remote_code=trust_remote_code, max_batch=spec.max_batch, kv_reuse=spec.kv_reuse,
        kv_cache_entries=spec.kv_cache_entries, kv_cache_bytes=spec.kv_cache_bytes,
    )
    if spec.kind in ("value-head", "orm-last-token", "orm-seq"):
        return _load_head_reader(spec, config, tokenizer, source, local, device, dtype, common)
    loader = AutoModelForCausalLM if spec.kind not in ("head",) else head_loader(config, trust_remote_code)
    model = load_model(loader, source, local, name, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    if spec.kind == "likelihood":
        return LikelihoodPRM(model, tokenizer, layout=spec.layout or HEAD_LAYOUT, sep=spec.step_separator, **common)
    mark, sep = spec.mark_and_sep
    reader = ChatTagPRM if spec.kind == "chat-tag" else HFPRM
    return reader(
        model, tokenizer, kind="tag" if spec.kind == "chat-tag" else spec.kind, mark=mark, sep=sep,
        layout=spec.layout or (TAG_LAYOUT if spec.kind == "tag" else HEAD_LAYOUT),
        good_token=spec.good_token, bad_token=spec.bad_token, head_label_index=spec.head_label_index, **common,
    )


def _presets() -> dict[str, Any]:
    from .bundle import PRM_PRESETS

    return dict(PRM_PRESETS)


def _load_head_reader(
    spec: RewardModelSpec, config: Any, tokenizer: Any, source: str, local: Any, device: Any, dtype: Any,
    common: dict[str, Any],
) -> RewardModel:
    """Value-head PRMs and outcome models: a body plus a head read from the weights (see reward_readers)."""
    name, trust_remote_code = spec.name_or_path, spec.trust_remote_code
    if spec.kind == "orm-seq":
        model = load_model(
            AutoModelForSequenceClassification, source, local, name,
            device=device, dtype=dtype, trust_remote_code=trust_remote_code,
        )
    else:
        body = load_model(
            AutoModel, source, local, name, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        )
        prefix = VALUE_HEAD if spec.kind == "value-head" else REWARD_HEAD
        model = HeadModel(body, read_head(local, prefix, int(config.hidden_size), name))
    if spec.kind == "value-head":
        return ValueHeadPRM(model, tokenizer, kind="head", mark=spec.step_separator, sep="", layout=HEAD_LAYOUT,
                            **common)
    return OutcomeRM(
        model, tokenizer, name=name, local=local, trust_remote_code=trust_remote_code, reading=spec.kind,
        separator=spec.step_separator, system_prompt=spec.system_prompt, head_label_index=spec.head_label_index,
    )
