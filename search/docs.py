"""Markdown for the README generated from the code, so the docs cannot drift from it.

`python cli.py docs --write` refreshes the marked README sections; a test fails when they
are stale.
"""

from __future__ import annotations

import re

from search.events import EVENT_SCHEMA, OPTIONAL_KEYS
from search.registry import all_strategies


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def strategies_markdown() -> str:
    """One table per strategy: knob, default, accepted values, meaning."""
    parts = []
    for name, spec in all_strategies().items():
        cls = spec.config_cls
        kinds = cls.knob_types()
        rows = [f"#### `{name}` — {spec.summary}", "", "| knob | default | values | meaning |", "|---|---|---|---|"]
        rows += [
            f"| `{k}` | `{d!r}` | {_cell(_accepts(cls, k, kinds[k]))} | {_cell(h)} |" for k, d, h in cls.knobs()
        ]
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def _accepts(cls, name: str, kind) -> str:
    choices = cls.knob_choices(name)
    text = ", ".join(choices) if choices else kind.base.__name__
    return f"{text} or None" if kind.optional else text


def events_markdown() -> str:
    """The closed event vocabulary: each kind, its payload keys and the keys it may carry (optional)."""
    rows = ["| event | payload |", "|---|---|"]
    for kind, fields in EVENT_SCHEMA.items():
        optional = {f"{key} (optional)": meaning for key, meaning in OPTIONAL_KEYS.get(kind, {}).items()}
        payload = "<br>".join(f"`{key}`: {_cell(meaning)}" for key, meaning in {**fields, **optional}.items())
        rows.append(f"| `{kind.value}` | {payload} |")
    return "\n".join(rows)


SECTIONS = {"strategies": strategies_markdown, "events": events_markdown}


def refresh(readme: str) -> str:
    """Replace every `<!-- begin:NAME -->...<!-- end:NAME -->` block with fresh content.

    The block between the markers may be empty (adjacent markers) or hold an older table; a
    README without the markers raises ValueError rather than silently keeping stale docs.
    """
    for name, render in SECTIONS.items():
        pattern = re.compile(rf"(<!-- begin:{name} -->\n)(.*?)(<!-- end:{name} -->)", re.DOTALL)
        if not pattern.search(readme):
            raise ValueError(f"README has no <!-- begin:{name} --> ... <!-- end:{name} --> markers.")
        readme = pattern.sub(lambda m, r=render: m.group(1) + r() + "\n" + m.group(3), readme)
    return readme


def all_sections() -> str:
    """Both generated sections, as `cli.py docs` prints them."""
    return "\n\n".join(render() for render in SECTIONS.values())
