"""``benchmarks/load.py`` imported by its path: pysbd installs a package named ``benchmarks`` that shadows ours."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from .conftest import ROOT


def _import(name: str = "qa_benchmarks_load") -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


load = _import()
