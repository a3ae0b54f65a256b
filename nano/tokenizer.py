"""A character-level tokenizer with a few whole-word tokens, built offline with `tokenizers`.

Why characters: digits must stay separate so a tiny model can learn column arithmetic, and a
fixed alphabet needs no training corpus.  Why a few word tokens: the protocol words the search
and the PRM read (`" yes"`, `" no"`, the step tag `ки`, and the PRM's `+`/`-` labels, which
are characters anyway) must each be ONE token, as the backends (models/hf_policy.py,
models/hf_prm.py) read the first token of each; frequent boiler-plate words are single tokens
too so sequences stay short.
"""

from __future__ import annotations

import string

from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"
PAD = "<pad>"
UNK = "<unk>"
#: The PRM step tag and labels: the defaults of `models.specs.RewardModelSpec` (kind="tag").
STEP_TAG = "ки"
GOOD, BAD = "+", "-"
#: The self-evaluation answers read by `HFPolicy.judge` (its defaults).
YES, NO = " yes", " no"
#: Whole-word tokens, longest first (added tokens are matched before the character split).
WORDS = (
    "Is this step correct?",
    "What is the result?",
    "Multiply by",
    "Divide by",
    "Subtract",
    "Start with",
    "Solution:",
    "Problem:",
    "Answer:",
    "Check:",
    "(left:",
    "to make",
    "Add",
    "Use",
    YES,
    NO,
    STEP_TAG,
)
ALPHABET = string.digits + string.ascii_letters + string.punctuation + " \n"


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The nano tokenizer: deterministic (no training), every printable ASCII character a token."""
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *ALPHABET])}
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (PAD, EOS, UNK)])
    tok.add_tokens([AddedToken(w, normalized=False) for w in WORDS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=PAD, unk_token=UNK, bos_token=EOS, model_max_length=512
    )
