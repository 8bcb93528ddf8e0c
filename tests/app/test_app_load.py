"""Load: concurrent requests all answered right, and memory bounded by the network cache."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Ten small networks at their CIFAR size: the cache (4) must load and drop them in turn.
TEN_NETWORKS = (
    "resnet20", "resnet32", "plain20", "plain32", "se_resnet20",
    "densenet40_k12", "lenet5", "lenet1989", "resnet44", "plain44",
)  # fmt: skip
MEMORY_LIMIT = 4 * 2**30


def resident_bytes() -> int:
    """This process's resident memory (the server runs in a thread of it), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_twenty_concurrent_inspections_are_all_answered_correctly(live_server, app_kit) -> None:
    image = live_server.upload(app_kit.png_bytes())
    sources = ["run:first", "run:second"] * 10
    expected = {}
    for source in set(sources):
        status, answer = live_server.ask(f"/api/inspect?source={source}&image={image}")
        assert status == 200, answer
        expected[source] = answer["predictions"]

    def inspect(source: str) -> tuple[str, int, dict]:
        return (source, *live_server.ask(f"/api/inspect?source={source}&image={image}&layer=c3"))

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(inspect, sources))
    assert len(answers) == 20
    for source, status, answer in answers:
        assert status == 200, answer
        assert answer["layer"] == "c3" and len(answer["features"]["maps"]) == 16
        got = [(p["class"], round(p["probability"], 5)) for p in answer["predictions"]]
        assert got == [(p["class"], round(p["probability"], 5)) for p in expected[source]]


def test_a_hundred_inspections_across_ten_networks_keep_memory_bounded(
    live_server, app_kit
) -> None:
    if not Path("/proc/self/status").is_file():
        import pytest

        pytest.skip("resident memory is read from /proc")
    image = live_server.upload(app_kit.png_bytes(36, 36))
    cache = live_server.app.state.cnnzoo.networks
    for request in range(100):
        name = TEN_NETWORKS[request % len(TEN_NETWORKS)]
        status, answer = live_server.ask(f"/api/inspect?source=model:{name}&image={image}&topk=1")
        assert status == 200, answer
        assert len(cache) <= cache.capacity
    assert resident_bytes() < MEMORY_LIMIT
