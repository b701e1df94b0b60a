"""Newsdesk QA chat UI: `python app.py [--host 127.0.0.1] [--port 7860] [--index index] [--auth-file FILE]`.

On first start, when the index folder is empty, the index is built from `seeds/`. It binds
127.0.0.1 (this machine only) unless `--host` says otherwise; `--auth`, `--auth-file` or
`$QA_AUTH` require a login.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from qa.assistant import start_loading
from qa.auth import add_auth_arguments, read_credentials
from qa.config import Config
from qa.errors import QAError


def main() -> int:
    """Parse the flags and serve the chat page."""
    parser = argparse.ArgumentParser(description="Serve the Newsdesk QA chat UI.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--index", dest="index_dir", help="index folder (default: index, or $QA_INDEX_DIR)")
    parser.add_argument("--seeds", nargs="*", default=["seeds"], help="articles to build an empty index from")
    parser.add_argument(
        "--store", help="faiss (default) or milvus://HOST:PORT[/PREFIX]: where a new index keeps its vectors"
    )
    add_auth_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        auth = read_credentials(args.auth, args.auth_file, os.environ)
        config = Config.from_env(index_dir=args.index_dir, store=args.store)
        loading = start_loading(config, args.seeds)  # the index and models load while gradio is imported
        from qa.ui import serve

        serve(config, host=args.host, port=args.port, seed_paths=args.seeds, auth=auth, loading=loading)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
