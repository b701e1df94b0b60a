"""The scale benchmark's synthetic library, its composed annotation, questions, hashing embedder and table."""

from __future__ import annotations

import numpy as np

from benchmarks import library_scale, synthetic_library
from qa import Article
from qa.ingest.annotate import Annotator
from qa.models import Models

CORPUS = [
    Article(
        f"n{i}",
        f"Title {i}",
        f"Story {i} opens here. The mayor of town {i} said the council approved the new "
        f"budget for schools and roads on Monday evening. Another line {i}.",
    )
    for i in range(5)
]


def test_every_synthetic_article_is_unique_even_past_the_corpus() -> None:
    notes = [None] * len(CORPUS)
    articles = [synthetic_library.synthetic(i, CORPUS, notes) for i in range(12)]
    assert len({a.text for a in articles}) == len({a.doc_id for a in articles}) == 12
    assert articles[7].text.startswith("NEWSDESK WIRE (library 7) - " + CORPUS[2].text)
    assert synthetic_library.synthetic(0, CORPUS, notes, "added").doc_id == "added-000000"


def test_the_composed_annotation_marks_the_same_sentences_and_names_as_the_parts(models: Models) -> None:
    annotator = Annotator(models.nlp())
    parts = annotator.annotate(CORPUS)
    composed = synthetic_library.ComposedAnnotator(CORPUS, parts)
    for i in (0, 3, 7, 11):
        article = synthetic_library.synthetic(i, CORPUS, parts)
        notes = composed.one(article)
        base, other = parts[i % 5], parts[(31 * i + 7) % 5]
        source = [CORPUS[i % 5].text[s.start : s.end] for s in base.sentences]
        source += [CORPUS[(31 * i + 7) % 5].text[s.start : s.end] for s in other.sentences[:2]]
        texts = [article.text[s.start : s.end] for s in notes.sentences]
        assert texts[0] == f"NEWSDESK WIRE (library {i}) - " + source[0] and texts[1:] == source[1:]
        names = [article.text[e.start : e.end] for s in notes.sentences for e in s.entities]
        original = [CORPUS[i % 5].text[e.start : e.end] for s in base.sentences for e in s.entities]
        original += [CORPUS[(31 * i + 7) % 5].text[e.start : e.end] for s in other.sentences[:2] for e in s.entities]
        assert names == original and names  # the towns, Monday


def test_questions_are_made_of_a_sentence_of_a_library_article() -> None:
    q = library_scale.question(1, 3, CORPUS)  # article 7919 mod 3 = 2
    assert q == "What do the articles say about mayor town council approved budget schools roads Monday?"


def test_the_hashing_embedder_is_deterministic_and_unit_length() -> None:
    embedder = library_scale.HashEmbedder()
    a, b = embedder.encode(["The council met", "A different text"]), embedder.encode(["The council met"])
    assert a.shape == (2, 384) and np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert np.array_equal(a[0], b[0]) and not np.allclose(a[0], a[1])


def test_table_shows_measured_and_skipped_sizes() -> None:
    row = {
        "size": 10,
        "disk_mb": 1.0,
        "cli_add_1": {"wall_s": 4.0, "peak_rss_mb": 600},
        "cli_add_short": {"wall_s": 3.0, "peak_rss_mb": 500},
        "api_add_short_s": 0.1,
        "cli_add_100": {"wall_s": 50.0, "peak_rss_mb": 700},
        "api_add_1_s": 0.3,
        "ask_cold_s": 4.2,
        "serve": {"serving_rss_mb": 620, "ask_p50_ms": 500},
    }
    builds = {10: {"passages": 100, "build_s": 6.0}, 50000: {"skipped": True, "estimated_build_s": 13800}}
    text = library_scale.table([row], builds, "cmd")
    row_text = "| 10 | 100 | 0.1 | 4.0 s, 600 MiB | 3.0 s, 500 MiB | 50.0 s, 700 MiB | 0.30 s | 0.10 s | 4.2 s | "
    assert row_text + "620 MiB | 500 ms | 1 MiB |" in text
    assert "| 50,000 | | ~230 (est.) | skipped" in text
