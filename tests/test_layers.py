"""The folders are the pipeline: imports run one way down the stages, and the shells (page, command
line, evaluation, benchmarks) go through the front door. Read from the source, not run."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lowest first: a module may import from its own layer and the ones below it, never above.
LAYERS = [
    # qa.catalog: the library's catalog and summary, values of qa.types kept in their own module (re-exported there)
    ("base", ("qa.text", "qa.types", "qa.catalog", "qa.options", "qa.errors", "qa.config", "qa.locks")),
    ("models", ("qa.models",)),
    ("ingest", ("qa.ingest",)),
    ("index", ("qa.index",)),
    ("pipeline", ("qa.pipeline",)),
    ("facade", ("qa.inputs", "qa.conversation", "qa.assistant", "qa")),
    ("shells", ("qa.eval", "qa.web", "qa.cli")),
]
# What the shells may use of the package: the front door and its values, errors and settings.
FACADE = ("qa", "qa.assistant", "qa.conversation", "qa.types", "qa.options", "qa.errors", "qa.config", "qa.text")
SHELL_OWN = {"qa.web": ("qa.web",), "qa.eval": ("qa.eval",), "qa.cli": ("qa.web", "qa.eval")}
# A benchmark that measures or refits one component may import that component, and nothing else inside.
BENCHMARK_COMPONENTS = {
    "scale": ("qa.index.stores.faiss",),
    "stores": ("qa.index.stores", "qa.index.passage_index", "qa.ingest.annotate"),
    "index_integrity": ("qa.index.versions", "qa.index.durability", "qa.index.passage_index", "qa.ingest.annotate"),
    "speed": ("qa.ingest.annotate", "qa.ingest.chunking", "qa.index.nodes"),
    "synthetic_library": ("qa.index.library", "qa.ingest.annotate"),
    "abstention": ("qa.pipeline.abstain", "qa.pipeline.reader", "qa.pipeline.question"),
    "generative": ("qa.pipeline.generate", "qa.ingest.annotate"),
    "speakers": ("qa.ingest.annotate", "qa.ingest.articles"),
    "sentence_scorer": (
        "qa.pipeline.sentence_scorer",
        "qa.pipeline.reader",
        "qa.pipeline.question",
        "qa.pipeline.answer_kind",
        "qa.ingest.annotate",
        "qa.ingest.chunking",
    ),
}
BENCHMARK_ALLOWED = (*FACADE, "qa.eval", "qa.models")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(module, names) of each ``qa`` import of ``path``, leaving out ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, tuple(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_of(module: str) -> int:
    best, found = -1, -1
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), rank
    assert found >= 0, f"{module} is in no layer"
    return found


def package_files() -> list[Path]:
    return sorted((ROOT / "qa").rglob("*.py"))


def test_every_module_imports_only_from_its_stage_and_the_stages_below() -> None:
    wrong = []
    for path in package_files():
        here = module_name(path)
        for target, _ in imports(path):
            if (target == "qa" or target.startswith("qa.")) and layer_of(target) > layer_of(here):
                wrong.append(f"{here} ({LAYERS[layer_of(here)][0]}) imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_shells_use_only_the_front_door() -> None:
    wrong = []
    for path in package_files():
        here = module_name(path)
        own = next((v for k, v in SHELL_OWN.items() if within(here, (k,))), None)
        if own is None:
            continue
        for target, names in imports(path):
            if not within(target, ("qa",)) or within(target, own):
                continue
            if target not in FACADE or any(n.startswith("_") for n in names):
                wrong.append(f"{here} imports {target} {names}")
    assert not wrong, "\n".join(wrong)


def test_benchmarks_use_the_front_door_or_the_component_they_measure() -> None:
    wrong = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        allowed = tuple(p for p in BENCHMARK_ALLOWED if p != "qa") + BENCHMARK_COMPONENTS.get(path.stem, ())
        for target, names in imports(path):
            if not within(target, ("qa",)):
                continue
            if target != "qa" and not within(target, allowed):
                wrong.append(f"benchmarks/{path.name} imports {target}")
            elif any(n.startswith("_") for n in names):
                wrong.append(f"benchmarks/{path.name} imports private {names} from {target}")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in package_files() if (n := len(p.read_text().splitlines())) > 430}
    assert not long, long
