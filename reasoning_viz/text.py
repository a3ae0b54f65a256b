"""Making model and user text inert before Streamlit renders it."""

from __future__ import annotations

MARKDOWN_SPECIALS = frozenset("\\`*_{}[]()#+-.!|>~<=:$")


def safe_markdown(text: str) -> str:
    """Backslash-escape every markdown/HTML special so links, images, HTML and emphasis
    render as the literal characters the model wrote."""
    escaped = "".join("\\" + ch if ch in MARKDOWN_SPECIALS else ch for ch in str(text))
    return escaped.replace("\n", "  \n")
