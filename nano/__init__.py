"""The nano reasoning pack: a tiny from-scratch policy and PRM for the arith and countdown tasks.

Modules: `tokenizer` (char-level tokenizer with single tokens for the protocol words),
`data` (seeded training data; never emits a Game-of-24 test puzzle), `train_policy`,
`train_prm`, `evaluate` (eval and sweep) and `cli` (typer commands, see `register`).
"""
