"""Settings: every field checked when a Config is built, one place that reads the environment,
and the README's table generated from it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from qa.config import Config, env_name, settings_markdown
from qa.errors import InvalidSettingError, QAError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"retrieval": "semantic"}, "QA_RETRIEVAL"),
        ({"top_k": 0}, "QA_TOP_K"),
        ({"strictness": 1.5}, "QA_STRICTNESS"),
        ({"rerank": "yes"}, "QA_RERANK"),
        ({"ann_index": "hnsw"}, "QA_ANN_INDEX"),
        ({"chunk_words": 2.5}, "QA_CHUNK_WORDS"),
        ({"ivf_probe_share": 0.0}, "QA_IVF_PROBE_SHARE"),
    ],
)
def test_a_value_out_of_range_is_refused_naming_the_setting_and_what_is_allowed(changes: dict, named: str) -> None:
    with pytest.raises(InvalidSettingError) as err:
        Config(**changes)
    message = str(err.value)
    assert named in message and repr(next(iter(changes.values()))) in message and "use " in message
    assert isinstance(err.value, QAError)


def test_the_environment_is_read_and_checked_in_one_place() -> None:
    env = {"QA_TOP_K": "4", "QA_RERANK": "off", "QA_STRICTNESS": "", "OPENAI_API_KEY": "sk-x", "XDG_CACHE_HOME": "/c"}
    config = Config.from_env(env)
    assert (config.top_k, config.rerank, config.strictness, config.llm_api_key) == (4, False, None, "sk-x")
    assert config.model_cache == "/c/newsdesk-qa" and "sk-x" not in repr(config)  # secrets stay out of logs
    for bad in ({"QA_RETRIEVAL": "semantic"}, {"QA_TOP_K": "six"}, {"QA_RERANK": "maybe"}):
        with pytest.raises(InvalidSettingError, match=next(iter(bad))):
            Config.from_env(bad)
    # Below the facade nothing reads the environment: only qa/config.py and the command line do.
    for path in (ROOT / "qa").rglob("*.py"):
        if path.name in ("config.py", "cli.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv")}
        assert not names, f"{path} reads the environment"


def test_the_readme_lists_every_setting_as_qa_config_generates_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.search(r"<!-- settings:start -->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert table is not None and table.group(1).strip() == settings_markdown()
    assert all(f"`{env_name(f)}`" in table.group(1) for f in Config.__dataclass_fields__)
