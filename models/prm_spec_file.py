"""A reward model's reading recipe described as data: a small JSON or YAML file.

For the next PRM that appears, without code: ``--prm-preset my_prm.yaml`` with e.g.

```yaml
kind: tag                 # tag | head | likelihood | chat-tag | value-head | orm-seq | orm-last-token
step_tag: "ки"            # tag kinds: where P(good) vs P(bad) is read
good_token: "+"
bad_token: "-"
step_separator: "\\n"      # text after each step (the mark for head / value-head kinds)
prefix: "{problem} "      # the layout: text before the first step ({problem} is replaced)
step: "{step} {mark}{sep}"  # per step; {mark} exactly once (the tag, or the separator for heads)
architectures: [MistralForCausalLM]  # optional: what the load-time fit check expects
single_tokens: ["ки"]     # optional: texts that must be single tokens of the tokenizer
```

Unknown fields, a wrong type or a layout without ``{mark}`` are refused with the file's name and
the field at fault (pydantic validation), before anything loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .bundle import PRMSpec

SPEC_SUFFIXES = (".json", ".yaml", ".yml")


class SpecFileError(ValueError):
    """A reward-model spec file that cannot be read; the message names the file and the field."""


class PRMSpecFile(BaseModel):
    """The fields a spec file may set (see the module docstring); the rest keep PRMSpec's defaults."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["tag", "head", "likelihood", "chat-tag", "value-head", "orm-seq", "orm-last-token"]
    step_tag: str = "ки"
    good_token: str = "+"
    bad_token: str = "-"
    step_separator: str = "\n"
    prefix: str | None = None
    step: str | None = None
    head_label_index: int = 1
    architectures: tuple[str, ...] = ()
    single_tokens: tuple[str, ...] = ()
    outcome: bool | None = None
    system_prompt: str | None = None

    @field_validator("step")
    @classmethod
    def _one_mark(cls, value: str | None) -> str | None:
        if value is not None and value.count("{mark}") != 1:
            raise ValueError("must contain '{mark}' exactly once (where each step's score is read)")
        return value


def is_spec_file(preset: str) -> bool:
    """Is `preset` the path of a spec file (by its suffix)?"""
    return preset.lower().endswith(SPEC_SUFFIXES)


def read_spec_file(path: str | Path) -> PRMSpec:
    """The PRMSpec a JSON/YAML file describes.  Raises SpecFileError (a ValueError) with what is wrong."""
    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecFileError(f"cannot read the reward-model spec file {path}: {err.strerror or err}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        raise SpecFileError(f"{path} is not valid {path.suffix[1:].upper()}: {err}") from None
    if not isinstance(data, dict):
        raise SpecFileError(f"{path} must hold a mapping of fields (kind, step_tag, ...), not {type(data).__name__}.")
    try:
        fields = PRMSpecFile.model_validate(data)
    except ValidationError as err:
        where = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in err.errors())
        raise SpecFileError(f"{path}: {where}") from None
    values = fields.model_dump()
    outcome = values.pop("outcome")
    values["outcome"] = fields.kind.startswith("orm-") if outcome is None else outcome
    if (fields.prefix is None) != (fields.step is None):
        raise SpecFileError(f"{path}: give both 'prefix' and 'step' for a layout, or neither.")
    layout = "nano" if fields.kind == "tag" else "head"
    return PRMSpec(layout=layout, **values)
