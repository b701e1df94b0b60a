"""Optional LLM backends, through llama-index's LLM integrations (the ``[llm]`` extra).

A backend is named by one string (``Config.llm``, ``--llm``):

- ``gguf:/path/model.gguf``: a local GGUF file run in-process by llama-cpp-python;
- ``openai:http://host:port/v1``: any OpenAI-compatible server (vLLM, llama.cpp's server,
  LM Studio, a hosted API), with ``llm_model`` naming the model; the API key comes from
  ``Config.llm_api_key`` (``$QA_LLM_API_KEY``, else ``$OPENAI_API_KEY``; a placeholder when neither is set);
- ``ollama:MODEL``: a model served by Ollama at ``Config.ollama_host``.

An empty string means no LLM: nothing is ever contacted unless a backend is configured.
The integrations are imported only when a backend is loaded, so the core install does not
need them; a missing one is a ``ModelLoadError`` saying what to install.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.config import Config
from qa.errors import ModelLoadError

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "newsdesk-qa[llm]" (or: pip install -e ".[llm]")'


class Backend(str, enum.Enum):
    """The kinds of LLM backend."""

    GGUF = "gguf"
    OPENAI = "openai"
    OLLAMA = "ollama"


@dataclass(frozen=True)
class LLMSpec:
    """A parsed backend string: its kind, its target (path, URL or model) and the model name."""

    backend: Backend
    target: str
    model: str = ""

    @classmethod
    def parse(cls, spec: str, model: str = "") -> LLMSpec:
        """Parse ``gguf:PATH``, ``openai:URL`` or ``ollama:MODEL``; raises ``ModelLoadError`` otherwise."""
        kind, sep, target = spec.strip().partition(":")
        try:
            backend = Backend(kind.lower())
        except ValueError:
            backend = None
        if not sep or backend is None or not target.strip():
            raise ModelLoadError(
                f"Unknown LLM backend {spec!r}: use gguf:/path/model.gguf, openai:http://host:port/v1 "
                "(with --llm-model NAME) or ollama:MODEL."
            )
        target = target.strip()
        if backend is Backend.OPENAI and not target.startswith(("http://", "https://")):
            raise ModelLoadError(f"openai:{target} is not an http(s) URL: use openai:http://host:port/v1.")
        return cls(backend, target, model.strip())

    @property
    def name(self) -> str:
        """A short human-readable name of the model (file name, served model, Ollama tag)."""
        if self.backend is Backend.GGUF:
            return Path(self.target).name
        if self.backend is Backend.OLLAMA:
            return self.target
        return self.model or self.target


Message = tuple[str, str]  # (role, content): role is "system", "user" or "assistant"


class LLM:
    """A chat model behind one of the backends: ``stream`` yields text as it is generated.

    Calls are serialised per instance (llama.cpp's in-process model is not thread-safe, and
    a local server gains nothing from concurrent requests).
    """

    def __init__(self, llm: Any, spec: LLMSpec) -> None:
        self._llm = llm
        self.spec = spec
        self.name = spec.name
        self._lock = threading.Lock()

    def stream(self, messages: Sequence[Message], on_token: Callable[[str], None] | None = None) -> str:
        """Generate the reply to ``messages``, calling ``on_token`` with each piece; returns the whole reply."""
        from llama_index.core.llms import ChatMessage

        chat = [ChatMessage(role=role, content=content) for role, content in messages]
        pieces: list[str] = []
        with self._lock:
            try:
                for response in self._llm.stream_chat(chat):
                    delta = response.delta or ""
                    if delta:
                        pieces.append(delta)
                        if on_token is not None:
                            on_token(delta)
            except Exception as exc:  # noqa: BLE001 - network, server and model errors alike
                raise ModelLoadError(f"The LLM {self.name!r} ({self.spec.backend.value}) failed: {exc}") from exc
        return "".join(pieces)


def load_llm(config: Config) -> LLM | None:
    """Return the configured LLM, or None when ``config.llm`` is empty (the sentence reader only)."""
    if not config.llm.strip():
        return None
    spec = LLMSpec.parse(config.llm, config.llm_model)
    loader = _LOADERS[spec.backend]
    log.info("Loading LLM %s (%s)", spec.name, spec.backend.value)
    return LLM(loader(spec, config), spec)


def _require(module: str) -> None:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ModelLoadError(f"The LLM backend needs {module!r}, which is not installed: {INSTALL_HINT}") from exc


def _gguf(spec: LLMSpec, config: Config) -> Any:
    _require("llama_cpp")
    _require("llama_index.llms.llama_cpp")
    from llama_index.llms.llama_cpp import LlamaCPP

    path = Path(spec.target).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"No GGUF model file at {path}: give --llm gguf:/path/to/model.gguf.")
    template = _ChatTemplate()
    try:
        llm = LlamaCPP(
            model_path=str(path),
            temperature=config.llm_temperature,
            max_new_tokens=config.llm_max_tokens,
            context_window=config.llm_context,
            model_kwargs={"n_threads": config.llm_threads or max(1, min(4, (os.cpu_count() or 2) // 2)), "seed": 0},
            generate_kwargs={},
            messages_to_prompt=template.render,
            completion_to_prompt=lambda text: template.render([_user_message(text)]),
            verbose=False,
        )
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"Cannot load the GGUF model {path}: {exc}") from exc
    template.bind(llm._model)  # noqa: SLF001 - the llama_cpp.Llama it loaded carries the chat template
    llm.generate_kwargs["stop"] = template.stop
    return llm


def _user_message(text: str) -> Any:
    from llama_index.core.llms import ChatMessage

    return ChatMessage(role="user", content=text)


class _ChatTemplate:
    """Renders chat messages with the GGUF file's own chat template (ChatML when it has none)."""

    _CHATML = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )

    def __init__(self) -> None:
        self._formatter: Any = None
        self.stop: list[str] = ["<|im_end|>"]

    def bind(self, model: Any) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        metadata = getattr(model, "metadata", {}) or {}
        template = metadata.get("tokenizer.chat_template") or self._CHATML

        def token(key: str) -> str:
            index = metadata.get(key)
            if index is None:
                return ""
            return model._model.token_get_text(int(index))  # noqa: SLF001

        eos, bos = token("tokenizer.ggml.eos_token_id"), token("tokenizer.ggml.bos_token_id")
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.stop = sorted({s for s in (eos, "<|im_end|>") if s})

    def render(self, messages: Sequence[Any]) -> str:
        rows = [{"role": str(getattr(m.role, "value", m.role)), "content": m.content or ""} for m in messages]
        if self._formatter is None:
            raise RuntimeError("the chat template is bound once the model is loaded")
        return self._formatter(messages=rows).prompt


def _openai(spec: LLMSpec, config: Config) -> Any:
    _require("llama_index.llms.openai_like")
    from llama_index.llms.openai_like import OpenAILike

    if not spec.model:
        raise ModelLoadError("An OpenAI-compatible backend needs the model name: --llm-model NAME (QA_LLM_MODEL).")
    key = config.llm_api_key or "not-needed"
    return OpenAILike(
        model=spec.model,
        api_base=spec.target.rstrip("/"),
        api_key=key,
        is_chat_model=True,
        is_function_calling_model=False,
        context_window=config.llm_context,
        max_tokens=config.llm_max_tokens,
        temperature=config.llm_temperature,
        timeout=config.llm_timeout,
        max_retries=1,
    )


def _ollama(spec: LLMSpec, config: Config) -> Any:
    _require("llama_index.llms.ollama")
    from llama_index.llms.ollama import Ollama

    return Ollama(
        model=spec.target,
        base_url=config.ollama_host,
        temperature=config.llm_temperature,
        request_timeout=config.llm_timeout,
        context_window=config.llm_context,
        additional_kwargs={"num_predict": config.llm_max_tokens},
    )


_LOADERS: dict[Backend, Callable[[LLMSpec, Config], Any]] = {
    Backend.GGUF: _gguf,
    Backend.OPENAI: _openai,
    Backend.OLLAMA: _ollama,
}
