"""How quickly the app answers: ``python -m cnnzoo.app.server_timing``.

Two numbers, each with the machine's load while it was taken
(:class:`cnnzoo.measure.load.LoadMeter`), since timings on busy cores can be many
times too slow:

* start: seconds from launching ``cnnzoo app`` to its first answered page;
* inspect: median and 90th percentile of one Inspect request over HTTP --
  top-5 predictions, Grad-CAM at the last stage and the feature maps of one
  layer -- for ResNet-18 at 224x224 by default, after two warm-up requests
  that load the network and its receptive fields into the cache;
* with ``--memory``: the server's resident memory after 100 Inspect requests
  cycling through ten ImageNet networks (VGG-16 alone holds 528 MB of
  weights), which the network cache keeps bounded.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np

from cnnzoo.measure.load import LoadMeter


def _get(url: str, body: bytes | None = None) -> dict:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def start_seconds() -> float:
    """Seconds from launching ``cnnzoo app --port 0`` to its first answered page."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "cnnzoo", "app", "--port", "0", "--runs", "runs"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split("serving ")[1].split()[0].split("#")[0]
        with urllib.request.urlopen(url, timeout=600) as response:
            response.read()
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)


def _picture(size: int) -> bytes:
    from PIL import Image

    generator = np.random.default_rng(0)
    pixels = generator.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


MEMORY_NETWORKS = (
    "alexnet", "vgg11", "vgg16", "resnet18", "resnet50",
    "googlenet", "densenet121", "mobilenet_v2", "efficientnet_b0", "se_resnet50",
)  # fmt: skip


def _resident_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _started_server():
    import uvicorn

    from cnnzoo.app.server import address, bind, create_app

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, address(sock)


def memory_after(requests: int = 100) -> tuple[int, int]:
    """(peak, final) resident bytes over ``requests`` Inspect requests across ten networks."""
    server, thread, url = _started_server()
    image = _get(f"{url}/api/images?name=noise.png", _picture(224))["id"]
    peak = 0
    for index in range(requests):
        name = MEMORY_NETWORKS[index % len(MEMORY_NETWORKS)]
        _get(f"{url}/api/inspect?source=model:{name}&image={image}&topk=5")
        peak = max(peak, _resident_bytes())
    final = _resident_bytes()
    server.should_exit = True
    thread.join(timeout=30)
    return peak, final


def inspect_seconds(model: str, size: int, requests: int, layer: str) -> tuple[list[float], float]:
    """The wall time of ``requests`` Inspect requests, one after another, over HTTP, and the
    processor time they took per request (all threads; the server runs in this process)."""
    server, thread, url = _started_server()
    image = _get(f"{url}/api/images?name=noise.png", _picture(size))["id"]
    question = f"{url}/api/inspect?source=model:{model}&image={image}&layer={layer}&topk=5"
    for _ in range(2):
        _get(question)
    seconds = []
    processor = time.process_time()
    for _ in range(requests):
        started = time.perf_counter()
        _get(question)
        seconds.append(time.perf_counter() - started)
    processor = (time.process_time() - processor) / requests
    server.should_exit = True
    thread.join(timeout=30)
    return seconds, processor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnzoo.app.server_timing", description=__doc__)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--layer", default="layer2", help="the layer whose feature maps are shown")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument(
        "--memory", action="store_true", help="only the memory after 100 requests, ten networks"
    )
    args = parser.parse_args(argv)
    if args.memory:
        peak, final = memory_after()
        print(
            f"resident memory over 100 Inspect requests across {len(MEMORY_NETWORKS)} networks: "
            f"peak {peak / 2**30:.2f} GiB, at the end {final / 2**30:.2f} GiB"
        )
        return 0
    import torch

    from cnnzoo.models.registry import get_model_entry

    size = get_model_entry(args.model).input_size[-1]
    with LoadMeter() as start_meter:
        start = start_seconds()
    with LoadMeter() as inspect_meter:
        seconds, processor = inspect_seconds(args.model, size, args.requests, args.layer)
    ninetieth = statistics.quantiles(seconds, n=10)[-1]
    print(f"start to first page: {start:.2f} s, {start_meter.load.describe()}")
    print(
        f"inspect {args.model} {size}x{size} (top-5, Grad-CAM, feature maps of {args.layer}), "
        f"{args.requests} requests: median {statistics.median(seconds):.3f} s, "
        f"90th percentile {ninetieth:.3f} s, {inspect_meter.load.describe()}; "
        f"processor time {processor:.3f} s per request on {torch.get_num_threads()} threads"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
