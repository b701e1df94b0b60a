"""Newsdesk QA: cited answers to questions about a collection of news articles.

``Assistant`` (and its ``Conversation``) is the one front door; the values it takes and returns
are in ``qa.types``, its errors in ``qa.errors``, its settings in ``qa.config``. ``Feeds`` are the
RSS and Atom feeds a library follows (``FeedScheduler`` refreshes them on their schedule), and
``start_loading`` starts a server's assistant.
"""

from qa.assistant import Assistant
from qa.config import Config
from qa.conversation import Conversation
from qa.errors import FetchError, QAError
from qa.feeds import Feeds, FeedScheduler
from qa.options import AskChanges, AskOptions, Filters
from qa.startup import start_loading
from qa.types import (
    Answer,
    Article,
    Catalog,
    CatalogEntry,
    Citation,
    Evidence,
    FeedItemResult,
    FeedStatus,
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
    "Catalog",
    "CatalogEntry",
    "Citation",
    "Config",
    "Conversation",
    "Evidence",
    "FeedItemResult",
    "FeedScheduler",
    "FeedStatus",
    "Feeds",
    "FetchError",
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
    "start_loading",
]
__version__ = "0.1.0"
