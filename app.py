"""Newsdesk QA chat UI: `python app.py [--host 127.0.0.1] [--port 7860] [--index index]`.

On first start, when the index folder is empty, the index is built from `seeds/`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from qa.config import Config
from qa.errors import QAError
from qa.ui import serve


def main() -> int:
    """Parse the flags and serve the chat page."""
    parser = argparse.ArgumentParser(description="Serve the Newsdesk QA chat UI.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--index", dest="index_dir", help="index folder (default: index, or $QA_INDEX_DIR)")
    parser.add_argument("--seeds", nargs="*", default=["seeds"], help="articles to build an empty index from")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(Config.from_env(index_dir=args.index_dir), host=args.host, port=args.port, seed_paths=args.seeds)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
