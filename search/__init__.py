"""ThoughtScope's search engine: one Tree and event log for every strategy.

This package never imports streamlit or sqlalchemy (a test holds it to that): the UI and
the recorder follow a search through its events.
"""

# Registers the built-in strategies.  Any `import search.x` runs this file first, so the
# registry is full before anyone asks it (and the registry itself never imports a strategy).
import search.strategies  # noqa: F401
from search.config import Budget, ConfigError, StrategyConfig
from search.events import Event, EventKind, EventLog, events_from_json
from search.models import Judgement, Models, Policy, Proposal, RewardModel, StepScores
from search.registry import all_strategies, get_strategy
from search.runner import SearchResult, run_search
from search.tasks import ProblemError, get_task
from search.tree import Node, Tree

__all__ = [
    "Budget",
    "ConfigError",
    "Event",
    "EventKind",
    "EventLog",
    "Judgement",
    "Models",
    "Node",
    "Policy",
    "ProblemError",
    "Proposal",
    "RewardModel",
    "SearchResult",
    "StepScores",
    "StrategyConfig",
    "Tree",
    "all_strategies",
    "events_from_json",
    "get_strategy",
    "get_task",
    "run_search",
]
