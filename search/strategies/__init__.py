"""Built-in strategies; importing this package registers them."""

from search.strategies import beam, chains, mcts, tot

__all__ = ["beam", "chains", "mcts", "tot"]
