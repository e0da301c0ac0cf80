"""Hostile code against the code sandbox: real programs, real processes, a real local server.

Every test checks that nothing the candidate started survives (no process of a sandbox uid is left),
that this pytest process is unharmed, and that the next verification still works.

    .venv/bin/python -m pytest -q tests/verify/test_sandbox.py
"""

import http.server
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from mmredstar.schema import CodeTests, Sample
from mmredstar.verify import verify_response
from mmredstar.verify.exec import sandbox as sb
from mmredstar.verify.exec.sandbox import Limits, isolation_mode, run_program

REPO = Path(__file__).resolve().parents[2]
FAST = Limits(per_test=2.0, total=6.0)

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="dropping to a sandbox uid needs root")


def run1(code, inp="", iso=None, limits=FAST):
    return list(run_program(code, [inp], limits=limits, isolation=iso))


ISOLATIONS = ["namespaces", "userns", "rlimits"]


@pytest.fixture(params=ISOLATIONS)
def iso(request):
    if request.param == "namespaces" and isolation_mode() != "namespaces":
        pytest.skip("namespaces unavailable here")
    if request.param == "userns" and sb._works(sb.USERNS)[0] is False:
        pytest.skip("user namespaces unavailable here")
    if request.param == "rlimits" and os.getuid() != 0:
        pytest.skip("the rlimits fallback drops privileges only as root")
    return request.param


def test_normal_program_and_isolation_facts(contained):
    code = ("import os, socket\n"
            "print(os.getuid(), os.getcwd())\n"
            "print(sorted(os.environ))\n")
    rec = run1(code)[0]
    assert rec["status"] == "ok"
    uid = int(rec["out"].split()[0])
    assert uid != 0 and sb.UID_RANGE[0] <= uid < sb.UID_RANGE[1]
    assert "PATH" in rec["out"] and "HOME" in rec["out"]
    contained()


@needs_root
def test_fork_bomb(iso, contained):
    code = ("import os\n"
            "while True:\n"
            "    try:\n"
            "        os.fork()\n"
            "    except OSError:\n"
            "        pass\n")
    t0 = time.monotonic()
    rec = run1(code, iso=iso)[0]
    assert rec["status"] in ("timeout", "killed", "error")
    assert time.monotonic() - t0 < 30
    contained()


def test_infinite_loop(iso, contained):
    rec = run1("while True:\n    pass\n", iso=iso, limits=Limits(per_test=1.0, total=3.0))[0]
    assert rec["status"] == "timeout" and 0.9 <= rec["time"] < 3
    contained()


def test_memory_hog(iso, contained):
    rec = run1("x = bytearray(8 * 1024 ** 3)\nprint('allocated')\n", iso=iso)[0]
    assert rec["status"] in ("memory", "error", "killed") and "allocated" not in rec["out"]
    rec = run1("l = []\nwhile True:\n    l.append(' ' * 10 ** 7)\n", iso=iso)[0]
    assert rec["status"] in ("memory", "error", "killed", "timeout")
    contained()


def test_a_swarm_of_memory_hogs(iso, contained):
    if not sb.describe(iso)["cgroups"]:
        pytest.skip("no writable memory cgroup here: only the per-process RLIMIT_AS applies")
    assert_swarm_capped(run1(SWARM, iso=iso, limits=Limits(per_test=30.0, total=35.0))[0])
    contained()


SWARM = ("import os, time\n"
         "for k in range(8):\n"                  # 8 x 400 MiB, each under the 1 GiB RLIMIT_AS
         "    if os.fork() == 0:\n"
         "        b = bytearray(400 * 1024 * 1024)\n"
         "        for i in range(0, len(b), 4096):\n"
         "            b[i] = 1\n"
         "        print('held', k, time.monotonic(), flush=True)\n"
         "        time.sleep(1.5)\n"
         "        print('free', k, time.monotonic(), flush=True)\n"
         "        os._exit(0)\n"
         "for k in range(8):\n"                  # wait for all of them, however slow a loaded machine makes them
         "    os.wait()\n")
"""Eight children that each hold 400 MiB for 1.5 s; the sandbox's cgroup (1024 + 256 MiB) admits three."""


def assert_swarm_capped(rec):
    """At no moment did more than three children hold their 400 MiB (what the cgroup's cap means, whatever
    the load on the machine makes them do one after another), and at least one held it to the end.

    Only children that printed both ``held`` and ``free`` count: each held its 400 MiB over that whole
    interval. A child the cap's OOM killer stopped after ``held`` never prints ``free``, and its memory went
    back at a moment no child can report, so it proves nothing either way (four completed intervals
    overlapping would have meant 1600 MiB held at once: over the cap)."""
    held, freed = {}, {}
    for line in rec["out"].splitlines():
        kind, k, t = line.split()
        (held if kind == "held" else freed)[k] = float(t)
    spans = [(held[k], freed[k]) for k in freed if k in held]
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    now, most = 0, 0
    for _, d in events:                                        # a release before a grab at the same time
        now += d
        most = max(most, now)
    assert 1 <= most <= 3, rec["out"]


def test_disk_filler(iso, contained):
    code = ("import os\n"
            "n = 0\n"
            "with open('big.bin', 'wb') as f:\n"
            "    for _ in range(4096):\n"
            "        f.write(b'x' * (1 << 20)); n += 1\n"
            "print('wrote', n)\n")
    rec = run1(code, iso=iso)[0]
    assert rec["status"] in ("error", "killed") and "wrote" not in rec["out"]
    assert "File too large" in rec["err"] or rec["status"] == "killed"
    contained()


@needs_root
def test_writes_outside_its_directory(iso, tmp_path, contained):
    token = uuid.uuid4().hex
    targets = [REPO / f"pwned-{token}.txt", Path("/tmp") / f"pwned-{token}.txt", tmp_path / "pwned.txt",
               Path("/root") / f"pwned-{token}.txt"]
    if iso == "rlimits":          # documented: the fallback has no private /tmp
        targets = [t for t in targets if not str(t).startswith("/tmp")]
    code = "import sys\nfor p in sys.stdin.read().split():\n" \
           "    try:\n        open(p, 'w').write('x'); print('WROTE', p)\n" \
           "    except OSError as e:\n        print('denied', p, e.errno)\n"
    rec = run1(code, "\n".join(map(str, targets)), iso=iso)[0]
    for t in targets:
        assert not t.exists(), f"the sandbox wrote {t}"
    if iso == "namespaces":
        assert "WROTE" not in rec["out"] or all("/tmp" in ln for ln in rec["out"].splitlines() if "WROTE" in ln)
    contained()


def test_reading_the_projects_files(contained, tmp_path):
    if isolation_mode() != "namespaces":
        pytest.skip("hiding the project needs a mount namespace (the fallback relies on file permissions)")
    secret = tmp_path / "expected_outputs.txt"
    secret.write_text("42")
    targets = [REPO / "README.md", REPO / "pyproject.toml", secret, Path.home() / ".bashrc"]
    code = ("import sys, numpy\n"                     # the interpreter and its packages still work
            "for p in sys.stdin.read().split():\n"
            "    try:\n"
            "        print('GOT', p, len(open(p).read()))\n"
            "    except OSError as e:\n"
            "        print('denied', p, e.errno)\n")
    rec = run1(code, "\n".join(map(str, targets)))[0]
    assert rec["status"] == "ok", rec
    assert "GOT " not in rec["out"] and rec["out"].count("denied") == len(targets)
    contained()


def test_an_interpreter_installed_under_tmp(tmp_path, contained):
    """A project cloned under /tmp (its .venv there too): the sandbox's private /tmp must not take the
    interpreter's packages away, and must still hide the project's other files."""
    if isolation_mode() != "namespaces":
        pytest.skip("the private /tmp needs a mount namespace")
    import site
    import subprocess
    import sys
    import venv

    env_dir = tmp_path / "proj" / ".venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    (site_dir,) = env_dir.glob("lib/python*/site-packages")
    (site_dir / "probe_mod.py").write_text("VALUE = 41\n")
    # this venv also sees the packages of the one running the tests (mmredstar and its dependencies)
    (site_dir / "outer.pth").write_text("\n".join(site.getsitepackages() + [str(REPO)]) + "\n")
    secret = tmp_path / "proj" / "expected_outputs.txt"
    secret.write_text("42")
    code = ("import probe_mod\nprint('probe', probe_mod.VALUE + 1)\n"
            "try:\n    open(input()).read(); print('GOT')\nexcept OSError as e:\n    print('denied', e.errno)\n")
    driver = ("import json, sys\nfrom mmredstar.verify.exec.sandbox import run_program\n"
              "print(json.dumps(list(run_program(sys.argv[1], [sys.argv[2]]))))")
    r = subprocess.run([str(env_dir / "bin" / "python"), "-c", driver, code, str(secret)], capture_output=True,
                       text=True, timeout=120, cwd=str(tmp_path / "proj"))
    assert r.returncode == 0, r.stderr[-2000:]
    rec = __import__("json").loads(r.stdout.strip().splitlines()[-1])[0]
    assert rec["status"] == "ok", rec
    assert "probe 42" in rec["out"] and "denied" in rec["out"] and "GOT" not in rec["out"]
    assert sys.prefix != str(env_dir)
    contained()


def test_reading_the_parents_environment(iso, monkeypatch, contained):
    secret = "s3cr3t-" + uuid.uuid4().hex
    monkeypatch.setenv("MMREDSTAR_TEST_SECRET", secret)
    code = ("import os\n"
            "print(dict(os.environ))\n"
            "for p in os.listdir('/proc'):\n"
            "    try:\n"
            "        print(open(f'/proc/{p}/environ', 'rb').read().decode(errors='replace'))\n"
            "    except OSError:\n"
            "        pass\n"
            "pid = int(input())\n"
            "try:\n"
            "    print(open(f'/proc/{pid}/environ', 'rb').read())\n"
            "except OSError as e:\n"
            "    print('denied', e.errno)\n")
    rec = run1(code, str(os.getpid()), iso=iso)[0]
    assert rec["status"] == "ok", rec
    assert secret not in rec["out"] and secret not in rec["err"]
    contained()


class _Handler(http.server.BaseHTTPRequestHandler):
    hits = []

    def do_GET(self):
        _Handler.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"reached")

    def log_message(self, *a):
        pass


@pytest.fixture
def local_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    _Handler.hits = []
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_opening_a_socket_to_a_local_server(local_server, contained):
    if isolation_mode() != "namespaces":
        pytest.skip("network isolation needs namespaces (the fallback has none, as documented)")
    port = local_server
    # the server is real: this process reaches it
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /from-test HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(1024):
            data += chunk
        assert b"reached" in data
    code = ("import socket, urllib.request\n"
            "port = int(input())\n"
            "for host in ('127.0.0.1', 'localhost'):\n"
            "    try:\n"
            "        print(urllib.request.urlopen(f'http://{host}:{port}/from-sandbox', timeout=2).read())\n"
            "    except Exception as e:\n"
            "        print('blocked', type(e).__name__)\n"
            "try:\n"
            "    socket.create_connection(('8.8.8.8', 53), timeout=2); print('OUTSIDE')\n"
            "except OSError as e:\n"
            "    print('blocked', e.errno)\n")
    rec = run1(code, str(port))[0]
    assert "reached" not in rec["out"] and "OUTSIDE" not in rec["out"]
    assert rec["out"].count("blocked") == 3
    assert _Handler.hits == ["/from-test"]
    contained()


def test_signalling_the_parent(iso, contained):
    me = os.getpid()
    code = ("import os, signal\n"
            "me = int(input())\n"
            "for f in (lambda: os.kill(os.getppid(), signal.SIGKILL), lambda: os.killpg(0, signal.SIGKILL),\n"
            "          lambda: os.kill(me, signal.SIGKILL), lambda: os.killpg(os.getpgid(me), signal.SIGKILL),\n"
            "          lambda: os.kill(1, signal.SIGKILL)):\n"
            "    try:\n"
            "        f()\n"
            "    except OSError as e:\n"
            "        print('denied', e.errno)\n"
            "os.kill(-1, signal.SIGKILL)\n")
    recs = list(run_program(code, [str(me), str(me)], limits=FAST, isolation=iso))
    assert os.getpid() == me                       # still here
    assert len(recs) >= 1
    contained()


def test_hostile_response_through_verify_response(contained):
    s = Sample.text("sum", None, "code", tests=CodeTests(["1 2"], ["3"]))
    bomb = "```python\nimport os\nwhile True:\n    os.fork()\n```"
    v = verify_response(s, bomb, per_test=1.0, total=3.0)
    assert v.verdict == "wrong" and v.reward == 0.0 and v.reason
    good = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    assert verify_response(s, good).verdict == "correct"
    contained()


def test_fallback_is_announced(monkeypatch):
    monkeypatch.delenv("MMREDSTAR_SANDBOX", raising=False)
    monkeypatch.setattr(sb.shutil, "which", lambda name: None)
    sb.isolation_mode.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="namespaces unavailable"):
            assert sb.isolation_mode() == "rlimits"
    finally:
        sb.isolation_mode.cache_clear()


def test_cgroup_v2_is_preferred_where_a_delegated_one_is_writable(tmp_path, monkeypatch):
    """The v2 path on a directory laid out like a delegated cgroup v2 subtree (this machine's v2 hierarchy
    has no memory controller, so the kernel side is exercised by the v1 tests above)."""
    parent = tmp_path / "user@1000.service"
    parent.mkdir()
    (parent / "cgroup.controllers").write_text("cpu memory pids\n")
    (parent / "cgroup.subtree_control").write_text("")
    monkeypatch.setattr(sb, "_v2_mount", lambda: str(tmp_path))
    monkeypatch.setenv("MMREDSTAR_CGROUP", str(parent))
    assert sb._v2_parent() == str(parent) and sb.cgroup_support() == "v2"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids"      # enabled for its children
    lim = Limits(memory_mb=512, nproc=10)
    (d,) = sb.make_cgroups(2_500_000, lim)
    assert d == str(parent / "mmredstar-sandbox-2500000")
    assert (Path(d) / "memory.max").read_text() == str((512 + 256) * 1024 * 1024)
    assert (Path(d) / "pids.max").read_text() == "26" and (Path(d) / "memory.swap.max").read_text() == "0"
    assert sb.describe("userns")["memory_cap"].startswith("all of a candidate's processes")
    (parent / "cgroup.controllers").write_text("cpu\n")                           # no memory controller
    assert sb._v2_parent() is None
