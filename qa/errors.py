"""The package's exceptions, each with a message a user can act on."""

from __future__ import annotations


class QAError(Exception):
    """Base class of every error raised by the ``qa`` package."""


class IndexNotFoundError(QAError):
    """No index exists at the given location."""

    def __init__(self, index_dir: str) -> None:
        super().__init__(
            f"No index found in {index_dir!r}. Build one first: "
            f"`qa index PATH... --index {index_dir}` (for example `qa index seeds --index {index_dir}`)."
        )
        self.index_dir = index_dir


class ManifestMismatchError(QAError):
    """The persisted index was built with settings that differ from the configuration."""

    def __init__(self, index_dir: str, differences: dict[str, tuple[object, object]]) -> None:
        details = "; ".join(f"{k}: index has {a!r}, configuration has {b!r}" for k, (a, b) in differences.items())
        super().__init__(
            f"The index in {index_dir!r} does not match the configuration ({details}). "
            f"Rebuild it with the current settings: `qa index PATH... --index {index_dir} --rebuild`, "
            f"or configure the settings it was built with."
        )
        self.index_dir = index_dir
        self.differences = differences


class OldFormatError(ManifestMismatchError):
    """The persisted index was written in an older format, which ``qa migrate`` converts."""

    def __init__(self, index_dir: str, found: object) -> None:
        QAError.__init__(
            self,
            f"The index in {index_dir!r} was written in format {found!r}, which this version no longer reads. "
            f"Convert it (nothing is embedded again): `qa migrate --index {index_dir}`; "
            f"or rebuild it: `qa index PATH... --index {index_dir} --rebuild`.",
        )
        self.index_dir = index_dir
        self.differences = {"format_version": (found, None)}


class CorruptIndexError(QAError):
    """The index folder exists but its files cannot be read."""

    def __init__(self, index_dir: str, reason: str) -> None:
        super().__init__(
            f"The index in {index_dir!r} cannot be read ({reason}). "
            f"Rebuild it: `qa index PATH... --index {index_dir} --rebuild`."
        )
        self.index_dir = index_dir


class NoArticlesError(QAError):
    """Nothing that could be indexed was found in the given paths."""


class InvalidArgumentError(QAError, ValueError):
    """An argument of a public method that cannot be used (wrong type or out of range)."""


class InvalidSettingError(InvalidArgumentError):
    """A setting (``QA_<NAME>`` or a ``Config`` field) whose value is not allowed."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        super().__init__(f"{name}={value!r:.80} is not allowed: use {allowed}.")
        self.name = name
        self.value = value


class InvalidQuestionError(InvalidArgumentError):
    """The question, or one of its options (filters, strictness, reader), is empty or otherwise unusable."""


class ModelLoadError(QAError):
    """A configured model could not be loaded offline."""


class UnknownArticleError(QAError, KeyError):
    """An article id that is not in the index (also a ``KeyError``, as a mapping lookup would raise)."""

    def __init__(self, doc_ids: str | list[str] | tuple[str, ...]) -> None:
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        super().__init__(
            f"Not in the index: {', '.join(map(repr, ids))}. "
            "`qa articles` (or Assistant.articles()) lists the indexed ids."
        )
        self.doc_ids = tuple(ids)

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


class IndexLockedError(QAError):
    """Another writer is changing the index; concurrent writes are refused, never interleaved."""

    def __init__(self, index_dir: str, lock_path: str, holder: str) -> None:
        super().__init__(
            f"The index in {index_dir!r} is being changed by another writer ({holder or 'holder unknown'}; "
            f"lock file {lock_path}). Wait for it to finish, then try again. "
            f"A lock left by a process that has died is taken over automatically."
        )
        self.index_dir = index_dir
        self.lock_path = lock_path
        self.holder = holder


class IndexChangedError(QAError):
    """The index on disk was changed by another writer after this copy was loaded."""

    def __init__(self, index_dir: str, loaded: str | None, current: str | None) -> None:
        super().__init__(
            f"The index in {index_dir!r} was changed by another writer after it was loaded "
            f"(loaded version {loaded}, now {current}); writing would undo that change. "
            f"Load the index again, then repeat the change."
        )
        self.index_dir = index_dir


class FetchError(QAError):
    """A web page or feed that could not be fetched or read: ``reason`` says why, ``status`` is its HTTP status."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class UnknownFeedError(QAError, KeyError):
    """A feed URL that the library does not follow (also a ``KeyError``)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"Not a followed feed: {url!r}. `qa feed list` lists the feeds.")
        self.url = url

    def __str__(self) -> str:
        return str(self.args[0])


class FeedListError(QAError):
    """The feed list of an index folder (``feeds.json``) cannot be read."""


class InvalidAuthError(QAError):
    """Login credentials (``--auth``, ``--auth-file``, ``$QA_AUTH``) that cannot be used."""


class InvalidStoreError(QAError):
    """A ``--store`` / ``$QA_STORE`` value that names no store, or a server that cannot hold what it names."""

    def __init__(self, value: str, detail: str = "") -> None:
        super().__init__(
            f"--store {value!r}: {detail}"
            if detail
            else f"--store {value!r} is not a vector store. Use `faiss` (the default: the library in the index "
            "folder), `milvus://HOST:PORT[/PREFIX]` (the whole library in a Milvus 2.5+ server or cluster) or "
            "`milvus-vectors://HOST:PORT[/PREFIX]` (only the passage vectors there; PREFIX: letters, digits and _)."
        )
        self.value = value


class StoreUnavailableError(QAError):
    """The vector store of an index cannot be used: a Milvus server that is down, or a client not installed."""

    START_SERVER = (
        "Start one there: on one machine `milvus-lite server --data-dir DIR --port PORT` (Milvus Lite, which "
        "computes BM25) or `milvus-server --data DIR --proxy-port PORT` (Milvus 2.3.5: vectors only), both in the "
        "[milvus] extra; beyond one machine Milvus standalone or a Milvus cluster (README, 'Past one machine: "
        "Milvus'); or point --store / $QA_STORE at a running one."
    )
    INSTALL = "Install the Milvus client: `pip install 'newsdesk-qa[milvus]'` (or `make setup`, which installs it)."

    def __init__(self, uri: str, detail: str, how: str = START_SERVER) -> None:
        super().__init__(f"Cannot use the Milvus server at {uri} ({detail}). {how}")
        self.uri = uri
