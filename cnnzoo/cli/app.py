"""cnnzoo app: the zoo, the instruments and the runs in a web page on this machine.

Four views: Zoo (every network, its block diagram, layer table and paper),
Inspect (predictions, Grad-CAM, feature maps; click a unit to see its
receptive field), Runs (recipes, metrics and curves of the runs under --runs,
live while training, compared side by side) and Experiments (the survey's
claims and reports). Nothing is fetched from another machine.

The server listens on 127.0.0.1 (this machine only) unless --host says
otherwise; stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from pathlib import Path
from urllib.parse import quote

from cnnzoo.errors import CnnzooError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs", type=Path, default=Path("runs"),
        help="folder of run directories to show (default: runs); nothing outside it is read",
    )  # fmt: skip
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    parser.add_argument(
        "--cache", type=int, default=None, metavar="N",
        help="networks kept loaded at once (default 4); more are loaded again when asked for",
    )  # fmt: skip
    parser.add_argument(
        "--run", dest="open_run", default=None, metavar="NAME",
        help="open the page on this run (a directory under --runs, e.g. demo)",
    )  # fmt: skip
    parser.add_argument("--open", action="store_true", help="open the page in a web browser")


def run(args: argparse.Namespace) -> int:
    from cnnzoo.app.networks import CACHE_SIZE
    from cnnzoo.app.server import address, bind, create_app, serve

    if not 0 <= args.port <= 65535:
        raise CnnzooError(f"--port must be in 0..65535, got {args.port}")
    if args.runs.exists() and not args.runs.is_dir():
        raise CnnzooError(
            f"--runs {args.runs} is a file; give the folder that holds run directories"
        )
    app = create_app(args.runs, args.cache if args.cache is not None else CACHE_SIZE)
    sock = bind(args.host, args.port)
    url = address(sock) + "/"
    if args.open_run:
        url += f"#run={quote(args.open_run)}"
    where = "this machine only" if sock.getsockname()[0] in ("127.0.0.1", "::1") else args.host
    print(
        f"cnnzoo app: serving {url} (listening on {where}; runs from {args.runs}); Ctrl-C stops",
        flush=True,
    )
    if args.open:
        _open_browser(url)
    serve(app, sock)
    return 0


def _open_browser(url: str) -> None:
    """Open ``url`` where there is a screen to show it; never a text browser in this terminal.

    Without a display Python's ``webbrowser`` falls back to console browsers (lynx,
    w3m), which would take over the terminal the server prints to.
    """
    has_screen = sys.platform in ("darwin", "win32") or any(
        os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY")
    )
    if not has_screen or not webbrowser.open(url):
        print(f"cnnzoo app: no browser to open here; visit {url}", flush=True)
