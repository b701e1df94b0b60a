"""Gradio, imported without the work it does for its own developers on every import.

Each Gradio component class, as it is defined, re-reads and re-parses its own source file
to regenerate Gradio's type stubs (``.pyi`` files in site-packages, which only editors
read). That is about half of ``import gradio`` (1 of 2.2 s here) and half of it on every
start of the chat page. ``gr`` is Gradio imported with that step skipped; everything else
is Gradio as it is. The hook applies only to the first import of
``gradio.component_meta`` and removes itself: if Gradio is already imported, or its
internals change, Gradio is imported unchanged.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

log = logging.getLogger(__name__)

_STUB_MODULE = "gradio.component_meta"


class _SkipStubRegeneration(importlib.abc.MetaPathFinder):
    """Loads ``gradio.component_meta`` as usual, then makes its stub writer do nothing."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != _STUB_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = spec.loader if spec else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            if callable(getattr(module, "create_or_modify_pyi", None)):
                module.create_or_modify_pyi = _no_stubs

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _no_stubs(*args: object, **kwargs: object) -> None:
    return None


if "gradio" not in sys.modules:
    sys.meta_path.insert(0, _SkipStubRegeneration())

import gradio as gr  # noqa: E402

__all__ = ["gr", "stubs_skipped"]


def stubs_skipped() -> bool:
    """True when this Gradio was imported without its stub regeneration."""
    meta = sys.modules.get(_STUB_MODULE)
    return meta is not None and getattr(meta, "create_or_modify_pyi", None) is _no_stubs
