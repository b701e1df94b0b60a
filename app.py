"""Newsdesk QA chat UI: `python app.py [OPTIONS]` is `qa serve [OPTIONS]` (`python app.py --help`).

On first start, when the index folder is empty, the index is built from `seeds/`. It binds
127.0.0.1 (this machine only) unless `--host` or `$GRADIO_SERVER_NAME` says otherwise, on port
7860 unless `--port` or `$GRADIO_SERVER_PORT` does; `--auth`, `--auth-file` or `$QA_AUTH`
require a login.
"""

from __future__ import annotations

import sys

from qa.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
