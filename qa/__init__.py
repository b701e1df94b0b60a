"""Newsdesk QA: cited answers to questions about a collection of news articles."""

from qa.assistant import Assistant, Conversation
from qa.config import Config
from qa.errors import QAError
from qa.types import Answer, Article, Citation

__all__ = ["Answer", "Article", "Assistant", "Citation", "Config", "Conversation", "QAError"]
__version__ = "0.1.0"
