"""Who may use the chat page: the optional login of ``app.py`` and ``qa serve``, and where the page binds.

Credentials are ``user:password`` pairs (the password may contain ``:``), given by
``--auth USER:PASSWORD`` (repeatable), by ``--auth-file FILE`` (one pair a line; blank lines
and ``#`` comments skipped) or, when neither flag is given, by ``$QA_AUTH`` (pairs separated
by newlines). Gradio checks them (``launch(auth=...)``): without a login the page shows only
its login form and every API route answers 401.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from qa.errors import InvalidArgumentError, InvalidAuthError

log = logging.getLogger(__name__)

AUTH_ENV = "QA_AUTH"
Credentials = list[tuple[str, str]]


def parse_credentials(text: str, origin: str) -> Credentials:
    """Return the ``user:password`` pairs in ``text``, one a line (blank lines and ``#`` comments skipped).

    ``origin`` names where the text came from, for the error of a malformed line.
    """
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, password = line.partition(":")
        if not colon or not user.strip() or not password:
            raise InvalidAuthError(
                f"{origin}, line {number}: expected USER:PASSWORD with neither empty (the password itself not shown)."
            )
        pairs.append((user.strip(), password))
    return pairs


def read_credentials(
    values: Sequence[str] = (), file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """Return the credentials of ``--auth`` ``values`` and ``--auth-file``, else of ``$QA_AUTH``; None when none.

    A file that names no credentials is an error (it was meant to protect the page).
    """
    pairs: Credentials = []
    for value in values:
        pairs += parse_credentials(value, "--auth")
    if file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidAuthError(f"Cannot read the credentials file {str(file)!r}: {exc}.") from exc
        found = parse_credentials(text, str(file))
        if not found:
            raise InvalidAuthError(f"The credentials file {str(file)!r} holds no USER:PASSWORD line.")
        pairs += found
    if not values and file is None and environ is not None and environ.get(AUTH_ENV, "").strip():
        pairs = parse_credentials(environ[AUTH_ENV], f"${AUTH_ENV}")
    return pairs or None


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the page on this machine (127.0.0.0/8, ::1 or localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[] ")).is_loopback
    except ValueError:
        return False


def serving_address(host: str | None, port: int | None, environ: Mapping[str, str]) -> tuple[str, int]:
    """The address to serve on: the flags, else Gradio's ``GRADIO_SERVER_NAME`` and ``GRADIO_SERVER_PORT``
    (as containers and hosted Spaces set them), else 127.0.0.1:7860."""
    host = host or environ.get("GRADIO_SERVER_NAME", "").strip() or "127.0.0.1"
    if port is None:
        raw = environ.get("GRADIO_SERVER_PORT", "").strip()
        try:
            port = int(raw) if raw else 7860
        except ValueError:
            raise InvalidArgumentError(f"GRADIO_SERVER_PORT={raw!r} is not a port number: use 1 to 65535.") from None
    if not 0 < port < 65536:
        raise InvalidArgumentError(f"Port {port} is out of range: use 1 to 65535 (--port or GRADIO_SERVER_PORT).")
    return host, port


def exposure_warning(host: str, credentials: Credentials | None) -> str | None:
    """Return the warning to log when serving on ``host`` lets others in unchecked, else None."""
    if is_loopback(host):
        return None
    if not credentials:
        return (
            f"Serving on {host}, reachable from other machines, WITHOUT authentication: anyone who can reach "
            f"this port can ask questions, read every article and add or remove articles. "
            f"Give --auth-file FILE (USER:PASSWORD lines) or ${AUTH_ENV}, or bind 127.0.0.1."
        )
    return (
        f"Serving on {host} with a login over plain HTTP: passwords and answers cross the network "
        "unencrypted; put the page behind an HTTPS reverse proxy on untrusted networks."
    )


def add_auth_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--auth`` and ``--auth-file`` to a command that serves the page."""
    parser.add_argument(
        "--auth",
        action="append",
        default=[],
        metavar="USER:PASSWORD",
        help="require this login (repeat for several users; visible to other local users in the process "
        f"list: prefer --auth-file or ${AUTH_ENV})",
    )
    parser.add_argument(
        "--auth-file",
        metavar="FILE",
        help=f"require a login listed in FILE, one USER:PASSWORD a line (default: ${AUTH_ENV} if set, else no login)",
    )


def add_serving_arguments(parser: argparse.ArgumentParser) -> None:
    """Add where a command that serves the page binds (``--host``, ``--port``) and what the page may fetch."""
    parser.add_argument(
        "--host", help="address to bind (default: $GRADIO_SERVER_NAME, else 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument(
        "--allow-private-fetch",
        action="store_true",
        help="let the page fetch URLs on this machine and private networks even when --host is not local "
        "(refused by default then, so that the page cannot be used to probe the network it runs in)",
    )
