"""Load: concurrent chat sessions against app.py through gradio_client, with a library update under way.

    .venv/bin/python -m benchmarks.load                        # 16 clients for 60 s
    .venv/bin/python -m benchmarks.load --clients 4 --seconds 20 --no-results-md

Writes 17 short articles (one person, one claim with a number, one place each), builds an
index of them and the seed article with app.py itself (``--seeds``), serves it on a free
port of 127.0.0.1 and runs one gradio_client session per client. Each session is a
different person's: it asks what that person said, then "Where was she when she said it?",
which names nobody and so can only be answered from that session's own conversation, clears
the conversation and starts again until time is up. Every answer is checked: it must quote
the person's words (or place), cite only the person's article, and a follow-up must have been
searched with the person's name. A third of the way in, another session uploads an 18th
article through /upload while the questions run, then asks about it.

Prints a table, writes benchmarks/out/load.json and benchmarks/RESULTS-load.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from benchmarks._common import BENCHMARKS, OUT, ROOT, SEEDS, cores, free_port, stop, write_json, write_page

RESULTS_MD = BENCHMARKS / "RESULTS-load.md"


@dataclass(frozen=True)
class Persona:
    """One article about one person, and the dialogue a client holds about it."""

    slug: str
    date: str
    headline: str
    lead: str
    name: str
    she: bool
    role: str
    place: str
    venue: str
    claim: str
    fact: str  # words of the claim that the first answer must quote
    addition: str
    topic: str

    @property
    def doc_id(self) -> str:
        """The article's id in the index (its file name without the suffix)."""
        return f"{self.date}-{self.slug}"

    @property
    def file_name(self) -> str:
        """The article's file name."""
        return f"{self.doc_id}.md"

    def article(self) -> str:
        """The article as Markdown: a heading, a lead, the quoted claim with its place, more words."""
        pronoun = "She" if self.she else "He"
        return (
            f"# {self.headline}\n\n{self.lead}\n\n"
            f"Speaking at {self.venue} in {self.place} on Tuesday, {self.role} {self.name} said {self.claim}. "
            f"{pronoun} added that {self.addition}.\n"
        )

    def dialogue(self) -> tuple[Check, Check]:
        """The question about this person, then a follow-up that only this conversation can resolve."""
        pronoun = "she" if self.she else "he"
        return (
            Check(f"What did {self.name} say about {self.topic}?", self.fact, self.doc_id, None),
            Check(f"Where was {pronoun} when {pronoun} said it?", self.venue, self.doc_id, self.name),
        )


@dataclass(frozen=True)
class Check:
    """A question and what its answer must show: words, the one article cited, the name searched."""

    question: str
    expected: str
    doc_id: str
    searched_name: str | None

    def problem(self, reply: str, cited: Sequence[str]) -> str | None:
        """Return what is wrong with an answer (its chat text and cited doc ids), or None when it is right."""
        reply = reply.replace("\\", "")  # the chat escapes Markdown: "start\\-ups"
        if self.expected not in reply:
            return f"expected {self.expected!r} in the answer: {reply[:300]!r}"
        if not cited or set(cited) != {self.doc_id}:
            return f"expected only {self.doc_id} cited, got {sorted(set(cited))}"
        searched = reply.partition("Searched:")[2]
        if self.searched_name and self.searched_name not in searched:
            return f"expected the follow-up to be searched with {self.searched_name!r}: {reply[-200:]!r}"
        return None


# One article a block reads better than one field a line.
# fmt: off
PERSONAS: tuple[Persona, ...] = tuple(
    Persona(*fields)
    for fields in [
        ("gdansk-tram", "2024-03-04", "Gdansk plans a tram line to the shipyard",
         "The city council of Gdansk approved plans for a tram line to the old shipyard.",
         "Marta Kowalczyk", True, "the mayor", "Gdansk", "the Artus Court",
         "the tram line to the shipyard would cost 412 million zlotys", "412 million zlotys",
         "the first trams would run within four years", "the tram line"),
        ("gothenburg-ferries", "2024-03-05", "Gothenburg rebuilds its ferry terminal",
         "Work began on the rebuilt ferry terminal in the port of Gothenburg.",
         "Tomas Lindqvist", False, "harbour master", "Gothenburg", "the Stena quay offices",
         "the rebuilt ferry terminal would handle 38 sailings a day", "38 sailings a day",
         "the old terminal building would become a museum", "the ferry terminal"),
        ("porto-harvest", "2024-03-06", "Hail cuts the Douro grape harvest",
         "Spring hail storms damaged vineyards along the Douro valley.",
         "Ines Carvalho", True, "the president of the wine institute", "Porto", "the Palacio da Bolsa",
         "the grape harvest had fallen by 17 percent", "17 percent",
         "growers would receive emergency loans", "the grape harvest"),
        ("tromso-reindeer", "2024-03-07", "Late snow hits reindeer herders",
         "Late snow in northern Norway left reindeer unable to reach the lichen they graze.",
         "Anders Nilsen", False, "the herders' council leader", "Tromso", "the Arctic Cathedral",
         "the herds had lost 2,300 calves", "2,300 calves",
         "herders wanted help to buy winter feed", "the reindeer herds"),
        ("valencia-reservoirs", "2024-03-08", "Valencia's reservoirs run low",
         "A dry winter left the reservoirs that supply Valencia far below their usual level.",
         "Lucia Ferrer", True, "water commissioner", "Valencia", "the Lonja de la Seda",
         "the reservoirs stood at 23 percent of capacity", "23 percent of capacity",
         "garden watering would be limited at night", "the reservoirs"),
        ("tartu-engineers", "2024-03-11", "Tartu expands engineering places",
         "The University of Tartu announced a large expansion of its engineering school.",
         "Kalev Tamm", False, "the rector", "Tartu", "the Old Observatory",
         "the university would admit 640 more engineering students", "640 more engineering students",
         "a new laboratory building would open next year", "engineering students"),
        ("zagreb-rebuilding", "2024-03-12", "Zagreb counts its repaired buildings",
         "Zagreb is still rebuilding after the earthquake that struck the city centre.",
         "Ana Horvat", True, "the reconstruction chief", "Zagreb", "the Mimara Museum",
         "1,150 damaged buildings had been repaired", "1,150 damaged buildings",
         "the cathedral's spires would be restored last", "the repaired buildings"),
        ("cork-flood-barrier", "2024-03-13", "Cork's flood barrier delayed again",
         "Cork's long-planned flood barrier along the river Lee has been delayed again.",
         "Declan Murphy", False, "the county manager", "Cork", "the Crawford Art Gallery",
         "the flood barrier would be finished by 2029", "finished by 2029",
         "the quays would be raised first", "the flood barrier"),
        ("lyon-metro", "2024-03-14", "Lyon's new metro line takes shape",
         "Tunnelling started for line E of the Lyon metro.",
         "Claire Dubois", True, "the president of the transport authority", "Lyon", "the Hotel de Ville",
         "line E would carry 90,000 passengers a day", "90,000 passengers a day",
         "the line would be driverless", "the metro line"),
        ("bergen-rain", "2024-03-15", "Bergen's record run of rainy days",
         "Bergen, already known as one of Europe's wettest cities, set a new rainfall record.",
         "Erik Haugland", False, "chief meteorologist", "Bergen", "the Fish Market hall",
         "the city had recorded 89 consecutive days of rain", "89 consecutive days of rain",
         "drains in the old town had overflowed twice", "the rain"),
        ("ljubljana-bees", "2024-03-18", "Slovenian beekeepers lose hives",
         "Beekeepers across Slovenia reported heavy losses after a mild, wet winter.",
         "Petra Novak", True, "the agriculture minister", "Ljubljana", "Ljubljana Castle",
         "beekeepers had lost 31 percent of their hives", "31 percent of their hives",
         "the government would pay for new queens", "the beekeepers"),
        ("antwerp-diamonds", "2024-03-19", "Antwerp's diamond trade shrinks",
         "The diamond trade in Antwerp had its weakest year in a decade.",
         "Pieter Janssens", False, "the head of the diamond exchange", "Antwerp", "the Bourse building",
         "diamond exports had dropped to 11 billion euros", "11 billion euros",
         "laboratory-grown stones had taken much of the market", "diamond exports"),
        ("bologna-manuscripts", "2024-03-20", "Bologna puts medieval manuscripts online",
         "The Bologna city archive finished a ten-year project to scan its medieval collection.",
         "Giulia Romano", True, "the archive's director", "Bologna", "the Archiginnasio",
         "the archive had digitised 48,000 medieval manuscripts", "48,000 medieval manuscripts",
         "scholars could now read them from anywhere", "the manuscripts"),
        ("krakow-smog", "2024-03-21", "Krakow's air is cleaner",
         "Krakow's ban on burning coal at home has changed the air over the old town.",
         "Jakub Zielinski", False, "the environment chief", "Krakow", "the Cloth Hall",
         "smog alerts had fallen from 52 days to 9 days a year", "52 days to 9 days",
         "the ban would be extended to the suburbs", "smog alerts"),
        ("seville-trees", "2024-03-22", "Seville plants trees against the heat",
         "Seville is planting trees to cool its streets in the summer heat.",
         "Rocio Navarro", True, "the climate officer", "Seville", "the Alcazar gardens",
         "the city would plant 7,500 shade trees before summer", "7,500 shade trees",
         "orange trees would be chosen where possible", "shade trees"),
        ("oulu-startups", "2024-03-25", "Oulu attracts technology start-ups",
         "Oulu, in northern Finland, has become a centre for technology start-ups.",
         "Mikko Virtanen", False, "the mayor", "Oulu", "the city theatre",
         "the city had attracted 120 technology start-ups in a year", "120 technology start-ups",
         "many were founded by former engineers of the phone industry", "start-ups"),
    ]
)

# The article uploaded while the questions run, and the question that must then find it.
UPLOADED = Persona(
    "reykjavik-geothermal", "2024-03-26", "Reykjavik opens a geothermal plant",
    "A new geothermal plant began supplying hot water to Reykjavik.",
    "Sigrun Jonsdottir", True, "the director of the energy company", "Reykjavik", "the Harpa concert hall",
    "the geothermal plant would heat 25,000 homes", "25,000 homes",
    "the plant would also supply the city's swimming pools", "the geothermal plant",
)
# fmt: on


@dataclass(frozen=True)
class Result:
    """One question asked by one client: when, how long the reply took, and what was wrong (if anything)."""

    client: int
    question: str
    started: float  # seconds since the load began
    seconds: float
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the answer was right."""
        return self.problem is None


@dataclass
class Upload:
    """The library update made during the load."""

    started: float = 0.0
    seconds: float = 0.0
    problem: str | None = None
    answer_problem: str | None = None


@dataclass
class Report:
    """Everything a load run measured."""

    clients: int
    duration: float
    results: list[Result] = field(default_factory=list)
    upload: Upload | None = None

    @property
    def errors(self) -> list[Result]:
        """Answers that were wrong or failed."""
        return [r for r in self.results if not r.ok]

    @property
    def during_upload(self) -> list[Result]:
        """Answers whose request was under way while the upload ran."""
        if self.upload is None:
            return []
        start, end = self.upload.started, self.upload.started + self.upload.seconds
        return [r for r in self.results if r.started < end and r.started + r.seconds > start]

    def latency(self, q: float) -> float:
        """The ``q`` quantile (0-1) of the answers' latencies in seconds (nearest rank)."""
        times = sorted(r.seconds for r in self.results)
        return times[max(0, math.ceil(q * len(times)) - 1)] if times else float("nan")

    def summary(self) -> dict[str, float | int | str | None]:
        """The figures of the run."""
        sessions = {r.client for r in self.results}
        return {
            "clients": self.clients,
            "seconds": round(self.duration, 1),
            "answers": len(self.results),
            "errors": len(self.errors),
            "sessions_answered": len(sessions),
            "answers_per_second": round(len(self.results) / self.duration, 2) if self.duration else 0.0,
            "p50_s": round(self.latency(0.50), 2),
            "p95_s": round(self.latency(0.95), 2),
            "max_s": round(max((r.seconds for r in self.results), default=float("nan")), 2),
            "upload_s": round(self.upload.seconds, 2) if self.upload else None,
            "answers_during_upload": len(self.during_upload),
            "upload_problem": (self.upload.problem or self.upload.answer_problem) if self.upload else None,
        }

    def table(self) -> str:
        """The figures as a Markdown table."""
        s = self.summary()
        rows = [
            ("clients (sessions)", s["clients"]),
            ("duration, s", s["seconds"]),
            ("answers checked", s["answers"]),
            ("errors (wrong answers or failures)", s["errors"]),
            ("throughput, answers/s", s["answers_per_second"]),
            ("latency p50, s", s["p50_s"]),
            ("latency p95, s", s["p95_s"]),
            ("latency max, s", s["max_s"]),
            ("upload during the load, s", s["upload_s"]),
            ("answers in flight during the upload", s["answers_during_upload"]),
            ("upload problem", s["upload_problem"] or "none"),
        ]
        return "\n".join(["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


# ---- the server ---------------------------------------------------------------------------


def write_articles(folder: Path, personas: Sequence[Persona]) -> list[Path]:
    """Write each persona's article into ``folder``; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for persona in personas:
        path = folder / persona.file_name
        path.write_text(persona.article(), encoding="utf-8")
        paths.append(path)
    return paths


@contextmanager
def app_server(
    index_dir: Path,
    log_path: Path,
    seeds: Sequence[Path] = (),
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
) -> Iterator[str]:
    """Run ``app.py`` on a free port of 127.0.0.1 (building ``index_dir`` from ``seeds`` when it is empty).

    Yields the page's URL once it answers; stops the server afterwards.
    """
    port = free_port()
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--index", str(index_dir), *args]
    if seeds:
        command += ["--seeds", *map(str, seeds)]
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        wait_until_up(url, proc, log_path, timeout)
        yield url
    finally:
        stop(proc)


def wait_until_up(url: str, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Return once ``url`` answers; raise with the server's log if it exits or ``timeout`` passes."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except urllib.error.HTTPError:
            return  # it answers, if only to refuse
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not start:\n{log_path.read_text()}") from exc
            time.sleep(0.5)


# ---- the clients --------------------------------------------------------------------------

_CITED = re.compile(r"<div class='qa-meta'>([^<,]+), characters \d+")


def cited_doc_ids(sources_panel: str) -> list[str]:
    """The doc ids cited by the latest answer, read from the sources panel (earlier answers' sources follow it)."""
    latest = sources_panel.split("Sources of earlier answers", 1)[0]
    return _CITED.findall(latest)


def reply_text(chat: Sequence[Mapping]) -> str:
    """The text of the last chat message."""
    content = chat[-1]["content"] if chat else ""
    return content if isinstance(content, str) else " ".join(part.get("text", "") for part in content)


def chat_client(
    number: int,
    url: str,
    persona: Persona,
    t0: float,
    until: float,
    auth: tuple[str, str] | None = None,
    keep_going: threading.Event | None = None,
) -> list[Result]:
    """One session: its person's dialogue, at least once, then again and again until ``until``
    (monotonic seconds) has passed and ``keep_going`` (if given) is cleared."""
    from gradio_client import Client

    client = Client(url, verbose=False, auth=auth)
    results: list[Result] = []
    while not results or time.monotonic() < until or (keep_going is not None and keep_going.is_set()):
        client.predict(api_name="/clear")
        chat: list = []
        for check in persona.dialogue():
            started = time.monotonic()
            try:
                _, chat, sources, _ = client.predict(check.question, chat, [], "", "", api_name="/chat")
                problem = check.problem(reply_text(chat), cited_doc_ids(sources))
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the load
                problem = f"{type(exc).__name__}: {exc}"
            results.append(Result(number, check.question, started - t0, time.monotonic() - started, problem))
            if problem:
                break  # the follow-up would depend on a wrong turn
    return results


def upload_client(url: str, path: Path, persona: Persona, t0: float, auth: tuple[str, str] | None = None) -> Upload:
    """Upload ``path`` through the page's /upload endpoint, then ask about it through /ask."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, auth=auth)
    upload = Upload(started=time.monotonic() - t0)
    try:
        status, *_ = client.predict([handle_file(str(path))], api_name="/upload")
        if f"Added: {persona.headline}" not in status.replace("\\", ""):
            upload.problem = f"upload status: {status!r}"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        upload.problem = f"{type(exc).__name__}: {exc}"
    upload.seconds = time.monotonic() - t0 - upload.started
    question = persona.dialogue()[0]
    answer = client.predict(question.question, api_name="/ask")
    cited = [c["doc_id"] for c in answer.get("citations", [])]
    upload.answer_problem = question.problem(answer.get("text", str(answer)), cited)
    return upload


def run_load(
    url: str,
    clients: int,
    seconds: float,
    upload_path: Path | None = None,
    upload_after: float | None = None,
    auth: tuple[str, str] | None = None,
) -> Report:
    """Run ``clients`` chat sessions for ``seconds`` against ``url``; upload ``upload_path`` after ``upload_after`` s.

    Every session completes its dialogue at least once, and the sessions go on until the upload
    is over, so that questions are always under way while the index is rewritten. Sessions that
    are still answering when time is up finish their dialogue.
    """
    t0 = time.monotonic()
    until = t0 + seconds
    outcomes: dict[int, list[Result]] = {}
    errors: list[BaseException] = []
    uploading = threading.Event()
    if upload_path is not None:
        uploading.set()

    def session(number: int) -> None:
        persona = PERSONAS[number % len(PERSONAS)]
        try:
            outcomes[number] = chat_client(number, url, persona, t0, until, auth, uploading)
        except BaseException as exc:  # noqa: BLE001 - a client that cannot even connect is an error too
            errors.append(exc)
            outcomes[number] = [Result(number, "(connect)", 0.0, 0.0, f"{type(exc).__name__}: {exc}")]

    threads = [threading.Thread(target=session, args=(n,), name=f"client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    upload = None
    if upload_path is not None:
        time.sleep(max(0.0, t0 + (upload_after if upload_after is not None else seconds / 3) - time.monotonic()))
        try:
            upload = upload_client(url, upload_path, UPLOADED, t0, auth)
        finally:
            uploading.clear()
    for thread in threads:
        thread.join()
    results = sorted((r for rs in outcomes.values() for r in rs), key=lambda r: r.started)
    return Report(clients, time.monotonic() - t0, results, upload)


# ---- the benchmark ------------------------------------------------------------------------


def results_markdown(report: Report, meta: Mapping[str, object]) -> str:
    """The text of RESULTS-load.md."""
    s = report.summary()
    cpu_per_answer = float(meta["cores"]) / float(s["answers_per_second"] or 1)
    return f"""# Load: concurrent chat sessions (`python -m benchmarks.load`)

{meta["clients"]} gradio_client sessions against `app.py` for {meta["seconds"]:g} s, on {meta["machine"]}
({meta["cores"]} CPU cores, shared with other work while measured), {meta["date"]}. Index: the seed
article and {len(PERSONAS)} short articles, one person each; the server as `python app.py`
(the default sentence reader, Gradio queue of 4 concurrent answers per event).

Each session asks what its person said ("What did Marta Kowalczyk say about the tram line?"),
then "Where was she when she said it?", which names nobody and can only be answered from that
session's own conversation; then clears and starts again. An answer counts as right when it
quotes the expected words (the claim's figure, then the place), cites only the person's article,
and the follow-up was searched with the person's name: any mixing of sessions would fail it.
A third of the way in, another session uploads a new article through `/upload` (the index is
rewritten on disk while the questions run) and then asks about it through `/ask`.
Latency is the whole round trip of one `/chat` call, waiting in the queue included.

{report.table()}

Answers: {s["answers"]} from {s["sessions_answered"]} sessions, {s["errors"]} errors.
Reproduce: `.venv/bin/python -m benchmarks.load` (JSON in `benchmarks/out/load.json`). The test
suite runs the same check shorter (`tests/test_load.py`: 16 sessions for about 15 s).

Latency is mostly waiting in the queue: Gradio runs at most 4 answers at a time per endpoint,
and at {s["answers_per_second"]} answers/s the {meta["cores"]} cores spend at most
{cpu_per_answer:.2f} s of CPU per answer. One question alone, in process on this set, takes
about 0.8 s (a follow-up) to 1.7 s (a first question).
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load benchmark: print a table, write JSON and RESULTS-load.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent chat sessions (default 16)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they ask (default 60)")
    parser.add_argument("--upload-after", type=float, help="seconds before the upload (default: a third of the run)")
    parser.add_argument("--out", type=Path, default=OUT / "load.json", help="JSON output (default benchmarks/out/)")
    parser.add_argument("--no-results-md", action="store_true", help="do not rewrite benchmarks/RESULTS-load.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="qa-load-") as tmp:
        work = Path(tmp)
        articles = write_articles(work / "articles", PERSONAS)
        upload = write_articles(work / "upload", [UPLOADED])[0]
        print(f"Building the index and starting app.py ({len(articles)} articles and the seed)…", file=sys.stderr)
        with app_server(work / "index", work / "app.log", seeds=[SEEDS, work / "articles"]) as url:
            print(f"Running {args.clients} sessions for {args.seconds:g} s against {url}", file=sys.stderr)
            report = run_load(url, args.clients, args.seconds, upload, args.upload_after)
    meta = {
        "clients": args.clients,
        "seconds": args.seconds,
        "machine": platform.platform(),
        "cores": cores(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    print(report.table())
    for r in report.errors[:20]:
        print(f"error: client {r.client} at {r.started:.1f}s, {r.question!r}: {r.problem}")
    payload = {
        "meta": meta,
        "summary": report.summary(),
        "upload": asdict(report.upload) if report.upload else None,
        "results": [asdict(r) for r in report.results],
    }
    write_json(args.out, payload)
    print(f"Wrote {args.out}")
    if not args.no_results_md:
        write_page(RESULTS_MD, results_markdown(report, meta))
    return 0 if not report.errors and report.upload and not report.summary()["upload_problem"] else 1


if __name__ == "__main__":
    sys.exit(main())
