"""The code verifier run by an ordinary (non-root) user shows the same containment as for root.

As root the test creates a throw-away user (``useradd``) with secrets in its home (``~/.netrc``, a Hugging
Face token, an ssh key), a world-readable folder at the top level that no deny-list names (a stand-in for
``/scratch``, ``/lustre``, ``/fsx``), and delegates the sandbox cgroups to it (``chown``, as a cluster's
cgroup delegation does); then it runs ``verify_response`` and ``run_program`` AS THAT USER (``runuser``,
with a system Python the user may execute) against hostile candidates. Run by a non-root user, the test
runs the same driver as itself. Shown: the verifier works; no network (not even this host's loopback);
none of the user's home, the project or the unlisted folder is readable, though the user itself reads
them all; no process outlives the run; a fork bomb is stopped; memory is capped across all of a
candidate's processes (where a cgroup is delegated); the isolation in force is stated.

    .venv/bin/python -m pytest -q tests/verify/test_sandbox_unprivileged.py
"""

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from mmredstar.verify.exec import sandbox as sb

from .test_sandbox import SWARM, assert_swarm_capped

REPO = Path(__file__).resolve().parents[2]

READ = ("import os, sys\n"
        "for p in sys.stdin.read().split():\n"
        "    try:\n"
        "        print('GOT', p, len(open(p, 'rb').read()))\n"
        "    except OSError as e:\n"
        "        print('denied', p, e.errno)\n")
NET = ("import socket\n"
       "for host, port in [('127.0.0.1', int(input())), ('1.1.1.1', 80), ('8.8.8.8', 53)]:\n"
       "    try:\n"
       "        socket.create_connection((host, port), timeout=2).close(); print('CONNECTED', host)\n"
       "    except OSError as e:\n"
       "        print('no network', host, e.errno)\n")
SPAWN = ("import os, time, subprocess\n"
         "for _ in range(3):\n"
         "    if os.fork() == 0:\n"
         "        os.setsid()\n"
         "        if os.fork() == 0:\n"
         "            time.sleep(120)\n"
         "        os._exit(0)\n"
         "subprocess.Popen(['sleep', '120'], start_new_session=True)\n"
         "print('spawned')\n")
BOMB = ("import os\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        pass\n")

DRIVER = r'''
import json, os, socket, sys, warnings
warnings.simplefilter("ignore")
from mmredstar.schema import CodeTests, Sample
from mmredstar.verify import verify_response
from mmredstar.verify.exec.sandbox import Limits, describe, run_program
args = json.loads(sys.argv[1])
out = {"uid": os.getuid(), "describe": describe()}
s = Sample(prompt=[], answer_type="code", tests=CodeTests(["20"], ["21"]))
out["verdict"] = verify_response(s, "```python\nprint(int(input()) + 1)\n```").verdict
host = {}
for p in args["paths"]:
    try:
        host[p] = len(open(p, "rb").read())
    except OSError as e:
        host[p] = -e.errno
out["host_reads"] = host
try:
    socket.create_connection(("127.0.0.1", args["port"]), timeout=2).close()
    out["host_net"] = True
except OSError:
    out["host_net"] = False
def run(code, inp="", **kw):
    return list(run_program(code, [inp], limits=Limits(**{"per_test": 6.0, "total": 12.0, **kw})))[0]
out["reads"] = run(args["read"], "\n".join(args["paths"]))
out["net"] = run(args["net"], str(args["port"]))
out["spawn"] = run(args["spawn"])
out["bomb"] = run(args["bomb"], per_test=3.0)
out["swarm"] = run(args["swarm"], per_test=30.0, total=35.0) if out["describe"]["cgroups"] else None
out["after"] = verify_response(s, "```python\nprint(int(input()) + 1)\n```").verdict
print("RESULT " + json.dumps(out))
'''


def _system_python():
    """A Python the throw-away user may execute (this venv's interpreter may live under /root)."""
    for p in ("/usr/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3.11"):
        if os.path.exists(p) and os.access(p, os.X_OK) and "/root" not in os.path.realpath(p):
            return p
    return None


@pytest.fixture
def server():
    srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()


@pytest.fixture
def user(tmp_path):
    """(name, uid, home, python) of an unprivileged user, with secrets in its home."""
    if os.getuid() != 0:
        import pwd
        import sys

        me = pwd.getpwuid(os.getuid())
        yield me.pw_name, me.pw_uid, Path(me.pw_dir), sys.executable, []
        return
    py = _system_python()
    if py is None or shutil.which("useradd") is None or shutil.which("runuser") is None:
        pytest.skip("needs useradd, runuser and a system Python an ordinary user may run")
    name = "mmrt" + uuid.uuid4().hex[:8]
    home = Path("/home") / name
    subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh", name], check=True)
    uid = int(subprocess.run(["id", "-u", name], capture_output=True, text=True, check=True).stdout)
    secrets = [home / ".netrc", home / ".cache" / "huggingface" / "token", home / ".ssh" / "id_ed25519"]
    for p in secrets:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("secret-" + uuid.uuid4().hex)
        os.chown(p.parent, uid, uid)
        os.chown(p, uid, uid)
        p.chmod(0o600)
    scratch = Path("/mmrscratch-" + uuid.uuid4().hex[:8])    # an unlisted top-level folder (/scratch, /lustre)
    scratch.mkdir()
    (scratch / "shared_data.txt").write_text("everyone may read this on the host")
    scratch.chmod(0o755)
    (scratch / "shared_data.txt").chmod(0o644)
    delegated = []
    for root in sb.CGROUP_ROOTS.values():                     # delegate the sandbox cgroups to the user
        d = Path(root) / "mmredstar"
        with contextlib.suppress(OSError):
            d.mkdir(exist_ok=True)
            st = d.stat()
            os.chown(d, uid, uid)
            delegated.append((d, st.st_uid, st.st_gid))
    try:
        yield name, uid, home, py, [scratch / "shared_data.txt"]
    finally:
        for d, u, g in delegated:
            with contextlib.suppress(OSError):
                os.chown(d, u, g)
        shutil.rmtree(scratch, ignore_errors=True)
        for pid in _processes_of(uid):                        # only the throw-away user's processes, by id
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def _processes_of(uid: int) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError, StopIteration, ValueError):
                with open(f"/proc/{pid}/status") as f:
                    if int(next(ln for ln in f if ln.startswith("Uid:")).split()[1]) == uid:
                        out.append(int(pid))
    return out


def test_the_verifier_run_by_an_ordinary_user_contains_the_candidate(user, server, tmp_path):
    name, uid, home, py, extra = user
    if sb._works(sb.USERNS)[0] is False and os.getuid() != 0:
        pytest.skip("user namespaces unavailable to this user")
    secrets = [home / ".netrc", home / ".cache" / "huggingface" / "token", home / ".ssh" / "id_ed25519"]
    paths = [str(p) for p in secrets + [REPO / "README.md", REPO / "mmredstar" / "verify" / "math.py"] + extra]
    args = {"paths": paths, "port": server, "read": READ, "net": NET, "spawn": SPAWN, "bomb": BOMB, "swarm": SWARM}
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"}
    cmd = [py, "-c", DRIVER, json.dumps(args)]
    if os.getuid() == 0:
        cmd = [shutil.which("runuser"), "-u", name, "--"] + cmd
    before = set(_processes_of(uid))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=str(home))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))[7:])

    assert out["uid"] == uid and uid != 0
    d = out["describe"]
    assert d["isolation"] == "userns" and d["root"] is False, d
    assert d["network"].startswith("none") and d["filesystem"].startswith("allow-list"), d
    assert out["verdict"] == "correct" and out["after"] == "correct"           # the verifier works, and again

    # the user itself reads every one of these files on the host; the candidate reads none
    assert all(n > 0 for n in out["host_reads"].values()), out["host_reads"]
    rec = out["reads"]
    assert rec["status"] == "ok", rec
    assert "GOT" not in rec["out"] and rec["out"].count("denied") == len(paths), rec["out"]

    assert out["host_net"] is True                                            # the server is there ...
    assert out["net"]["status"] == "ok" and "CONNECTED" not in out["net"]["out"], out["net"]   # ... not for it
    assert out["net"]["out"].count("no network") == 3

    assert "spawned" in out["spawn"]["out"], out["spawn"]     # (its sleepers hold stdout open: a timeout)
    assert out["bomb"]["status"] in ("timeout", "killed", "error"), out["bomb"]
    if os.getuid() == 0:                                   # delegated above: caps across all its processes
        assert d["cgroups"] == "v1" or d["cgroups"] == "v2", d
    if out["swarm"] is not None:
        assert_swarm_capped(out["swarm"])
    for _ in range(50):                                    # nothing the candidates started outlives the run
        left = set(_processes_of(uid)) - before
        if not left:
            break
        time.sleep(0.1)
    assert not left, f"processes of {name} survived: {sorted(left)}"
