"""The HTTP server of ``cnnzoo app``: one page, its files, and a JSON answer per question.

Starlette rather than a component framework (Gradio, Streamlit): clicking a
unit of a feature map and drawing its receptive field on the input needs
pixel coordinates and drawing of our own, which plain JavaScript over a
canvas and SVG gives directly, and the page is an ordinary DOM a real
browser can test. Everything the page loads comes from ``static/`` here.

Each question is a plain (synchronous) handler, so Starlette runs it in its
thread pool and a slow network never blocks the others; a
:class:`~cnnzoo.errors.CnnzooError` becomes a 400 answer whose one-line
message the page shows, and the server keeps serving.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cnnzoo.app.networks import CACHE_SIZE, NetworkCache
from cnnzoo.app.samples import SampleShelf
from cnnzoo.app.uploads import MAX_UPLOAD_BYTES, ImageStore, upload_too_large
from cnnzoo.errors import CnnzooError

STATIC = Path(__file__).parent / "static"
DEFAULT_HOST = "127.0.0.1"  # this machine only, unless --host says otherwise


class AppState:
    """What the handlers share: the runs folder, the network cache, the images."""

    def __init__(self, runs_root: Path, cache_size: int = CACHE_SIZE) -> None:
        self.runs_root = Path(runs_root)
        self.networks = NetworkCache(self.runs_root, cache_size)
        self.images = ImageStore()
        self.samples = SampleShelf(self.images)


def _text(request: Request, name: str, default: str | None = None) -> str:
    value = request.query_params.get(name, default)
    if value is None:
        raise CnnzooError(f"the request lacks {name}=")
    return value


def _integer(request: Request, name: str) -> int:
    text = _text(request, name)
    try:
        return int(text)
    except ValueError:
        raise CnnzooError(f"{name} must be a whole number, got {text!r}") from None


def create_app(runs_root: Path = Path("runs"), cache_size: int = CACHE_SIZE) -> Starlette:
    """The application; ``runs_root`` is the only folder whose runs it reads."""
    state = AppState(runs_root, cache_size)

    def answer(handler):
        """A handler of ``(state, request)`` returning data, with errors turned into messages."""

        def endpoint(request: Request) -> Response:
            try:
                result = handler(state, request)
            except CnnzooError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
            except Exception as error:  # a bug must not take the server down with it
                message = f"the server could not answer ({type(error).__name__}: {error})"
                return JSONResponse({"error": message}, status_code=500)
            return result if isinstance(result, Response) else JSONResponse(result)

        return endpoint

    async def upload(request: Request) -> Response:
        return await _receive_upload(state, request)

    routes = [
        Route("/", lambda request: FileResponse(STATIC / "index.html")),
        Route("/api/images", upload, methods=["POST"]),
        *[Route(path, answer(handler)) for path, handler in QUESTIONS.items()],
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.cnnzoo = state
    return app


async def _receive_upload(state: AppState, request: Request) -> Response:
    """The raw bytes of an image (or, with ``mask_for=ID``, a mask), kept up to the limit.

    Beyond the limit the rest of the body is read and dropped rather than kept: the
    client is still sending, and answering before it has finished would reset the
    connection instead of showing the message.
    """
    body = bytearray()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received <= MAX_UPLOAD_BYTES:
            body += chunk
    if received > MAX_UPLOAD_BYTES:
        return JSONResponse({"error": upload_too_large(received)}, status_code=413)
    name = request.query_params.get("name") or "the upload"
    mask_for = request.query_params.get("mask_for")
    try:
        if mask_for:
            stored = await run_in_threadpool(state.images.add_mask, mask_for, bytes(body), name)
            return JSONResponse({"id": mask_for, "mask": True, "name": stored.name})
        image_id, stored = await run_in_threadpool(state.images.add, bytes(body), name)
    except CnnzooError as error:
        return JSONResponse({"error": str(error)}, status_code=400)
    return JSONResponse(
        {"id": image_id, "name": stored.name, "height": stored.height, "width": stored.width}
    )


# --- the questions, one per view ----------------------------------------------------------


def _zoo(state: AppState, request: Request) -> Any:
    from cnnzoo.app.zoo import catalogue

    return catalogue()


def _network(state: AppState, request: Request) -> Any:
    from cnnzoo.app.zoo import network_page

    return network_page(_text(request, "name"))


def _network_pair(state: AppState, request: Request) -> Any:
    from cnnzoo.app.zoo import compare_networks

    return compare_networks(_text(request, "first"), _text(request, "second"))


def _sources(state: AppState, request: Request) -> Any:
    """What Inspect can look into: every network fresh, cached pretrained weights, every run."""
    from cnnzoo.app.networks import has_pretrained
    from cnnzoo.app.runs import list_runs
    from cnnzoo.models.registry import get_model_entry, list_models

    names = list_models()
    with_weights = [n for n in names if get_model_entry(n).torchvision and has_pretrained(n)]
    return {
        "models": names,
        "pretrained": with_weights,
        "runs": [r for r in list_runs(state.runs_root) if _has_checkpoint(state, r)],
    }


def _has_checkpoint(state: AppState, run: str) -> bool:
    folder = state.runs_root / run
    return (folder / "best.pt").is_file() or (folder / "last.pt").is_file()


def _samples(state: AppState, request: Request) -> Any:
    return {"samples": state.samples.samples(_text(request, "source"), state.runs_root)}


def _inspect(state: AppState, request: Request) -> Any:
    from cnnzoo.app.inspection import TOP_K, inspect_image

    network = state.networks.get(_text(request, "source"))
    image = state.images.get(_text(request, "image"))
    topk = _integer(request, "topk") if "topk" in request.query_params else TOP_K
    layer = request.query_params.get("layer") or None
    cam_layer = request.query_params.get("cam_layer") or None
    return inspect_image(network, image, layer, cam_layer, topk)


def _unit(state: AppState, request: Request) -> Any:
    from cnnzoo.app.inspection import unit_fields

    network = state.networks.get(_text(request, "source"))
    image = state.images.get(_text(request, "image"))
    layer = _text(request, "layer")
    return unit_fields(network, image, layer, _integer(request, "row"), _integer(request, "column"))


def _se(state: AppState, request: Request) -> Any:
    from cnnzoo.app.inspection import se_gates

    network = state.networks.get(_text(request, "source"))
    image = state.images.get(_text(request, "image"))
    return se_gates(network, image, request.query_params.get("block") or None)


def _runs(state: AppState, request: Request) -> Any:
    from cnnzoo.app.runs import list_runs

    return {"root": str(state.runs_root), "runs": list_runs(state.runs_root)}


def _run(state: AppState, request: Request) -> Any:
    from cnnzoo.app.runs import run_summary

    return run_summary(state.runs_root, _text(request, "run"))


def _run_picture(state: AppState, request: Request) -> Any:
    from cnnzoo.app.runs import run_picture

    return FileResponse(run_picture(state.runs_root, _text(request, "run"), _text(request, "name")))


def _run_comparison(state: AppState, request: Request) -> Any:
    from cnnzoo.app.runs import compare_runs

    return compare_runs(state.runs_root, request.query_params.getlist("run"))


def _experiments(state: AppState, request: Request) -> Any:
    from cnnzoo.app.survey import experiments

    return {"experiments": experiments(state.runs_root)}


def _experiment(state: AppState, request: Request) -> Any:
    from cnnzoo.app.survey import experiment_report

    return experiment_report(_text(request, "name"), state.runs_root)


def _experiment_figure(state: AppState, request: Request) -> Any:
    from cnnzoo.app.survey import experiment_figure

    path = experiment_figure(_text(request, "name"), _text(request, "figure"), state.runs_root)
    return FileResponse(path)


QUESTIONS = {
    "/api/zoo": _zoo,
    "/api/network": _network,
    "/api/network/compare": _network_pair,
    "/api/sources": _sources,
    "/api/samples": _samples,
    "/api/inspect": _inspect,
    "/api/unit": _unit,
    "/api/se": _se,
    "/api/runs": _runs,
    "/api/run": _run,
    "/api/run/picture": _run_picture,
    "/api/runs/compare": _run_comparison,
    "/api/experiments": _experiments,
    "/api/experiment": _experiment,
    "/api/experiment/figure": _experiment_figure,
}


def bind(host: str = DEFAULT_HOST, port: int = 8000) -> socket.socket:
    """A listening socket (port 0: any free port), or a one-line error when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise CnnzooError(
            f"cannot listen on {host}:{port} ({error.strerror or error}); choose another --port"
        ) from None
    sock.listen(128)
    return sock


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until interrupted."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
