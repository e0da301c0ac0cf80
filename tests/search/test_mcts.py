"""The tree search on generated multi-step arithmetic, with a step policy written from the reference."""

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass

from mmredstar.generate import Teacher, gen_record
from mmredstar.schema import Response
from mmredstar.search.mcts import MCTSConfig, read_trees, run_mcts
from mmredstar.synth.steps import step_problems

HOSTILE = [
    "import os\nos.system('touch /tmp/pwned')\nx = 0",
    "while True:\n    pass",
    "x = [0] * (10 ** 10)",
    "import os\nopen(os.path.expanduser('~/.mmredstar_pwned'), 'w').write('x')\nx = 1",
    "import os\nos.fork()\nos.fork()\nx = 1",
]


@dataclass
class StepScriptConfig:
    p_right: float = 0.6
    """Probability that a candidate is the reference's next step."""
    p_hostile: float = 0.15
    """Probability that a candidate is hostile code (it must be dropped, and the search survive it)."""
    delay: float = 0.0


class StepScriptTeacher(Teacher):
    """A step policy for tests: the reference's next step, a plausible wrong one, or hostile code."""

    kind = "stepscript"
    Config = StepScriptConfig

    def generate(self, samples, n, params):
        out = []
        for s, k in zip(samples, n, strict=True):
            ref = s.meta["reference_steps"]
            done = s.prompt[-1].text.count("<end_of_step>") if s.prompt[-1].role == "assistant" else 0
            rng = random.Random(f"{params.seed}|{s.id}")
            rs = []
            for j in range(k):
                u = rng.random()
                if u < self.config.p_hostile:
                    text = rng.choice(HOSTILE)
                elif u < self.config.p_hostile + self.config.p_right or done >= len(ref) - 1:
                    text = ref[min(done, len(ref) - 1)]
                else:
                    text = f"x = x + {rng.randint(1, 5)}" if done else f"x = {rng.randint(1, 30)}"
                rs.append(Response(text=text, finish_reason="stop", gen=gen_record(self.kind, None, k, j, params, 0)))
            out.append(rs)
        time.sleep(self.config.delay)
        return out


def teacher(**kw):
    return {"kind": "tests.search.test_mcts:StepScriptTeacher", **kw}


def check_q(tree):
    """Q values consistent with terminal outcomes: each node's value_sum is the sum of its rollouts' rewards,
    and every rollout ends at a terminal node under it."""
    nodes = {n["id"]: n for n in tree["nodes"]}
    for n in nodes.values():
        if n["terminal"] and n["visits"]:
            r = 1.0 if n["verdict"] == "correct" else -1.0
            assert n["value_sum"] == r * n["visits"] and n["q"] == r
        elif n["children"] and not n["terminal"]:
            kids = [nodes[c] for c in n["children"]]
            assert n["visits"] == sum(c["visits"] for c in kids)
            assert abs(n["value_sum"] - sum(c["value_sum"] for c in kids)) < 1e-9
            assert abs(n["q"] - n["value_sum"] / max(1, n["visits"])) < 1e-6
    assert nodes[0]["visits"] == tree["rollouts"]


def test_mcts_trees_q_and_hostile_code(tmp_path):
    probs = step_problems(6, seed=1)
    cfg = MCTSConfig(teacher=teacher(), k=3, rollouts={"1-3": 4, "4-10": 6}, max_depth=6, batch_problems=4)
    path = run_mcts(cfg, str(tmp_path), samples=probs)
    trees = read_trees(path)
    assert [t["id"] for t in sorted(trees, key=lambda t: t["id"])] == sorted(s.id for s in probs)
    by_level = {t["sample"]["meta"]["level"]: t["rollouts"] for t in trees}
    assert by_level["Level 1"] == 4 and by_level["Level 3"] == 6
    for t in trees:
        check_q(t)
        for n in t["nodes"][1:]:
            # endless, memory-hungry and forking candidates are killed by the sandbox and never become nodes
            assert n["status"] == "ok" and "while True" not in n["code"] and "10 ** 10" not in n["code"]
    assert sum(t["solved"] for t in trees) >= 4
    assert any(n["verdict"] == "wrong" for t in trees for n in t["nodes"])
    # file writes happened in the sandbox's private, read-only world, not here
    assert not os.path.exists(os.path.expanduser("~/.mmredstar_pwned")) and not os.path.exists("/tmp/pwned")
    # rerun: nothing redone
    before = open(path).read()
    run_mcts(cfg, str(tmp_path), samples=probs)
    assert open(path).read() == before


KILL_SCRIPT = """
import sys
from mmredstar.search.mcts import MCTSConfig, run_mcts
from mmredstar.synth.steps import step_problems
cfg = MCTSConfig(teacher={"kind": "tests.search.test_mcts:StepScriptTeacher", "delay": 0.3, "p_hostile": 0.0},
                 k=2, rollouts=3, max_depth=6, batch_problems=2)
run_mcts(cfg, sys.argv[1], samples=step_problems(8, seed=2))
"""


def test_kill_in_mid_search_resumes(tmp_path):
    out = str(tmp_path / "run")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    p = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, out], env=env)
    path = os.path.join(out, "trees.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline and len(read_trees(path)) < 2:
        time.sleep(0.2)
    p.kill()
    p.wait()
    got = read_trees(path)
    assert 2 <= len(got) < 8
    with open(path, "a") as f:          # a torn line, as a kill in mid-write leaves
        f.write('{"id": "torn')
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, out], env=env, check=True, timeout=300)
    final = read_trees(path)
    assert len(final) == 8 and len({t["id"] for t in final}) == 8
    assert [t["id"] for t in final[: len(got)]] == [t["id"] for t in got]   # finished problems kept, not redone
    for t in final:
        check_q(t)
    assert json.loads(open(os.path.join(out, "mcts_summary.json")).read())["problems"] == 8
