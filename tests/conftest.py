"""Shared fixtures. Tests never download anything: tiny models and tokenizers are built locally."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"
SHARED = Path(os.environ.get("MMREDSTAR_SHARED", REPO.parent / "shared"))
# Our own OpenAI-compatible test server (scripted answers, injected faults): used where a real server cannot
# misbehave on demand.
SERVER = Path(__file__).resolve().parent / "openai_server.py"


@pytest.fixture
def assets() -> Path:
    return ASSETS


@pytest.fixture
def shared() -> Path:
    """The ../shared folder (benchmarks, conformance); tests using it skip where it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return SHARED


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except Exception:
        has_gpu = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)

def make_geoqa(root: Path, n: int, seed: int = 0) -> Path:
    """A GeoQA dataset in the G-LLaVA / LLM-era layout: ``test_questions.jsonl`` (+ ``test_answers.jsonl``)
    and one PNG diagram per problem under ``images/test/``. Returns the questions file."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    (root / "images" / "test").mkdir(parents=True, exist_ok=True)
    qs, ans = [], []
    for i in range(n):
        a = rng.randint(20, 80)
        kind = i % 3
        if kind == 0:
            q, val = f"As shown in the figure, AB parallel CD, angle 1 = {a}.0, then the degree of angle 2 is ()", 180 - a
        elif kind == 1:
            q, val = f"As shown in the figure, in circle O, angle AOB = {2 * a}.0, then the degree of angle ACB is ()", a
        else:
            b = rng.randint(20, 70)
            q, val = f"As shown in the figure, in triangle ABC, angle A = {a}.0, angle B = {b}.0, then angle C = ()", 180 - a - b
        opts = sorted({val, val + 10, abs(val - 20) or 5, val + 30})
        while len(opts) < 4:
            opts.append(opts[-1] + 7)
        rng.shuffle(opts)
        letter = "ABCD"[opts.index(val)]
        img = Image.new("RGB", (64, 64), "white")
        d = ImageDraw.Draw(img)
        d.polygon([(8, 56), (56, 56), (8 + (i * 7) % 48, 8)], outline="black", fill=(200, 220, 255))
        img.save(root / "images" / "test" / f"{i}.png")
        text = ("\nFirst perform reasoning, then finally select the question from the choices in the following format: "
                f"Answer: xxx.\nQuestion:{q}\nChoices:\n" + "\n".join(f"{L}:{v}°" for L, v in zip("ABCD", opts, strict=True)))
        qs.append({"question_id": i, "image": f"test/{i}.png", "text": text})
        ans.append({"question_id": i, "text": letter})
    for name, rows in (("test_questions.jsonl", qs), ("test_answers.jsonl", ans)):
        with open(root / name, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return root / "test_questions.jsonl"


@pytest.fixture
def geoqa_factory():
    """``make_geoqa(root, n, seed=0)``: a GeoQA-format dataset of ``n`` problems under ``root``."""
    return make_geoqa


@pytest.fixture
def geoqa_dir(tmp_path) -> Path:
    """A 12-problem GeoQA-format dataset (questions file path)."""
    return make_geoqa(tmp_path / "geoqa", 12)


class Server:
    """A running ``openai_server.py`` process: ``url``, ``requests()`` (the request log), ``stop()``."""

    def __init__(self, tmp: Path, *args: str):
        self.log = tmp / f"requests-{time.monotonic_ns()}.jsonl"
        port_file = tmp / f"port-{time.monotonic_ns()}"
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen([sys.executable, str(SERVER), "--port-file", str(port_file), "--log", str(self.log),
                                      *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while not port_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read().decode()[-2000:]}")
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("server did not start in 60 s")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def requests(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(x) for x in self.log.read_text().splitlines() if x.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def start_server(tmp_path):
    """``start_server(*args) -> Server``; every server started is stopped at the end of the test."""
    servers = []

    def start(*args: str) -> Server:
        s = Server(tmp_path, *args)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
