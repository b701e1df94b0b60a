"""Conversations: follow-up questions read in the light of the earlier turns (``qa.pipeline.dialogue``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from typing_extensions import Unpack

from qa.errors import InvalidArgumentError, UnknownArticleError
from qa.ingest.annotate import Annotator
from qa.inputs import clean_question
from qa.inputs import options as options_with
from qa.options import AskChanges, AskOptions
from qa.pipeline.dialogue import Resolution, points_back, resolve
from qa.pipeline.generate import GenerativeReader
from qa.text import key_terms
from qa.types import Answer, Turn

if TYPE_CHECKING:
    from qa.assistant import Assistant


class Conversation:
    """A dialogue with the assistant: follow-up questions are read in the light of the earlier turns.

    A question that points back ("Who said that?", "Where was he when he said it?", "And
    what did Pakistan's prime minister say?", "What about South Korea?") is rewritten from
    the names, people, quotations and articles of earlier turns (see ``qa.pipeline.dialogue``) and
    searched first in the articles of the turn it points to. ``Answer.resolved_question``
    shows what was searched; names borrowed from the conversation are never required in
    the answer.
    """

    def __init__(self, assistant: Assistant, history: Sequence[Turn] = ()) -> None:
        self.assistant = assistant
        self._turns: list[Turn] = list(history)
        if not all(isinstance(t, Turn) for t in self._turns):
            raise InvalidArgumentError("history must be a list of Turn values, as Conversation.history returns.")

    @property
    def history(self) -> tuple[Turn, ...]:
        """The turns so far, oldest first."""
        return tuple(self._turns)

    def reset(self) -> None:
        """Forget the conversation."""
        self._turns.clear()

    def resolve(self, question: str) -> Resolution:
        """Return how ``question`` reads in this conversation: what would be searched, and where first."""
        question = clean_question(question, self.assistant.config.max_question_chars)
        return resolve(question, [t.answer for t in self._turns], self._article_text)

    def _article_text(self, doc_id: str) -> str:
        try:
            return self.assistant.article(doc_id).text
        except UnknownArticleError:  # removed from the library since it was cited
            return ""

    def ask(
        self,
        question: str,
        options: AskOptions | None = None,
        *,
        on_token: Callable[[str], None] | None = None,
        **changes: Unpack[AskChanges],
    ) -> Answer:
        """Answer ``question`` in the context of the conversation (``options``, the filters, ``reader``,
        ``on_token`` and ``strictness`` as in ``Assistant.ask``). When the LLM answers, it also
        rewrites follow-ups that point back."""
        chosen = options_with(options, changes)
        resolution = self.resolve(question)
        if (
            self.assistant.uses_llm(chosen.reader)
            and self._turns
            and self.assistant.config.llm_condense
            and points_back(resolution.question)
        ):
            resolution = self._condensed(resolution)
        answer = None
        if resolution.doc_ids:
            within = chosen.overridden(doc_ids=tuple(resolution.doc_ids))
            answer = self.assistant.ask(question, within, resolved=resolution.text, on_token=on_token)
        if answer is None or answer.abstained:
            answer = self.assistant.ask(question, chosen, resolved=resolution.text, on_token=on_token)
        self._turns.append(Turn(answer.question, answer))
        return answer

    def _condensed(self, resolution: Resolution) -> Resolution:
        """``resolution`` with its text rewritten by the LLM from the earlier turns; the rule-based reading is kept
        when the LLM's rewrite is unusable (see ``GenerativeReader.condense``)."""
        llm = self.assistant.llm
        if llm is None:
            return resolution
        turns = [(t.question, t.answer.text) for t in self._turns]
        sentences = Annotator(self.assistant.models.nlp()).sentences
        rewritten = GenerativeReader(llm, None, self.assistant.config, sentences).condense(resolution.question, turns)
        if not rewritten:
            return resolution
        own = set(key_terms(resolution.question))
        return replace(resolution, text=rewritten, borrowed=tuple(t for t in key_terms(rewritten) if t not in own))

    def context_terms(self, question: str) -> list[str]:
        """Return the names ``question`` borrows from the conversation (none for a question that stands alone)."""
        return list(self.resolve(question).borrowed)
