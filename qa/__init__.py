"""Newsdesk QA: cited answers to questions about a collection of news articles.

``Assistant`` (and its ``Conversation``) is the one front door; the values it takes and returns
are in ``qa.types``, its errors in ``qa.errors``, its settings in ``qa.config``.
"""

from qa.assistant import Assistant
from qa.config import Config
from qa.conversation import Conversation
from qa.errors import QAError
from qa.options import AskChanges, AskOptions, Filters
from qa.types import (
    Answer,
    Article,
    Citation,
    Evidence,
    FileProblem,
    Hit,
    IndexUpdate,
    LibrarySummary,
    LoadReport,
    Passage,
    Retrieval,
    Sentence,
    ShortAnswer,
    Turn,
)

__all__ = [
    "Answer",
    "Article",
    "AskChanges",
    "AskOptions",
    "Assistant",
    "Citation",
    "Config",
    "Conversation",
    "Evidence",
    "FileProblem",
    "Filters",
    "Hit",
    "IndexUpdate",
    "LibrarySummary",
    "LoadReport",
    "Passage",
    "QAError",
    "Retrieval",
    "Sentence",
    "ShortAnswer",
    "Turn",
]
__version__ = "0.1.0"
