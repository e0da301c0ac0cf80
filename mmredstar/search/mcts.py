"""Monte Carlo tree search over code-augmented steps (rStar-Math), with any generation backend.

Per problem, ``rollouts`` times (by difficulty band: harder problems get more): from the root, descend by
UCT (``Q + c * sqrt(ln N(parent) / (1 + N(child)))``, unvisited children first, the one with the highest
prior first); a node not yet expanded asks the policy for ``k`` candidate next steps (one request with
``n=k``, stop string ``<end_of_step>``, the path so far as an assistant prefix); each candidate is kept
only if the code of the path plus its own runs in the sandbox; a terminal step (``The answer is`` /
``\\boxed{}``) is scored by the sample's verifier. The rollout's reward, +1 correct and -1 otherwise (wrong,
no kept candidate, ``max_depth`` reached), is back-propagated: every node on the path gets a visit and the
reward, so ``Q = value_sum / visits`` is the mean terminal outcome through it. In round r > 1 a PPM scores
each new step and its score initialises the node (a pseudo-visit: ``Q = (value_sum + prior) / (visits + 1)``).

Problems are searched in lock-step batches (``batch_problems``): the expansions all problems need at once
go to the backend as one ``generate`` call and to the sandbox as one run, so a server or a local model
sees full batches. Each finished problem's tree is appended as one JSON line to ``OUT/trees.jsonl``
(flushed and fsynced); a rerun skips problems already there, so a kill loses only the problems in flight.

    mmredstar mcts configs/rstar/mcts_tiny.yaml --out runs/mcts [--set k=4 --set teacher.model=PATH]

Tree record: ``{"id", "sample", "round", "rollouts", "nodes": [{"id", "parent", "depth", "text", "code",
"status", "output", "terminal", "verdict", "answer", "visits", "value_sum", "q", "prior", "children"}],
"solved", "stats"}``; node 0 is the root (the problem).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from dataclasses import dataclass, field

from ..generate import SamplingParams, build_teacher
from ..levels import parse_schedule, samples_for
from ..schema import Sample
from .steps import STEP_END, candidate_steps, execute, is_terminal, step_code, terminal_verdict, with_prefix

log = logging.getLogger(__name__)
TREES = "trees.jsonl"


@dataclass
class MCTSConfig:
    """The tree search (the ``mcts`` section of an rStar workflow config, or a ``mmredstar mcts`` config)."""

    input: str = ""
    """Problem sample file(s) (JSONL/Parquet; a glob or a list)."""
    teacher: dict = field(default_factory=lambda: {"kind": "transformers", "model": "tiny_text"})
    """The policy: any generation backend (``{kind: transformers|openai|vllm, ...}``, see ``mmredstar.generate``)."""
    k: int = 4
    """Candidate next steps generated per expanded node."""
    c: float = 1.0
    """UCT exploration constant."""
    rollouts: int | dict = 8
    """Rollouts per problem: a number, or by difficulty band (``{"1-3": 4, "4-10": 16}``)."""
    max_depth: int = 8
    """Steps per trajectory at most; a path this long without an answer counts as wrong."""
    temperature: float = 1.0
    """Sampling temperature of candidate steps."""
    top_p: float = 1.0
    """Nucleus mass of candidate steps."""
    step_max_tokens: int = 256
    """Maximum new tokens per step (a step cut at this limit is dropped)."""
    extra: dict = field(default_factory=dict)
    """Backend-specific sampling options (``SamplingParams.extra``)."""
    seed: int = 0
    """Seed of the search (per-node generation seeds and tie-breaking derive from it)."""
    batch_problems: int = 16
    """Problems searched together (their expansions batched into one generate call)."""
    limit: int | None = None
    """Search at most this many problems of the input."""
    ppm: str | None = None
    """A trained PPM directory (``mmredstar.modeling.ppm``): initialises new nodes' values (round r > 1)."""
    ppm_weight: float = 1.0
    """Pseudo-visits given to the PPM's prior (the prior counts like this many rollouts)."""
    round: int = 1
    """Round number recorded in the trees."""
    exec_timeout: float = 2.0
    """Seconds each path's code may run in the sandbox."""
    verify_options: dict = field(default_factory=dict)
    """Options for the verifier of terminal answers."""


# ----------------------------------------------------------------------------------------- trees
class Node:
    __slots__ = ("id", "parent", "depth", "text", "code", "status", "output", "terminal", "verdict", "answer",
                 "visits", "value_sum", "prior", "children", "expanded")

    def __init__(self, id: int, parent: int | None, depth: int, text: str = "", code: str = ""):
        self.id, self.parent, self.depth, self.text, self.code = id, parent, depth, text, code
        self.status, self.output = "ok", ""
        self.terminal, self.verdict, self.answer = False, None, None
        self.visits, self.value_sum, self.prior = 0, 0.0, None
        self.children: list[int] = []
        self.expanded = False

    def q(self, prior_weight: float = 1.0) -> float:
        if self.prior is not None:
            return (self.value_sum + prior_weight * self.prior) / (self.visits + prior_weight)
        return self.value_sum / self.visits if self.visits else 0.0

    def to_dict(self, prior_weight: float = 1.0) -> dict:
        return {"id": self.id, "parent": self.parent, "depth": self.depth, "text": self.text, "code": self.code,
                "status": self.status, "output": self.output, "terminal": self.terminal, "verdict": self.verdict,
                "answer": self.answer, "visits": self.visits, "value_sum": self.value_sum,
                "q": round(self.q(prior_weight), 6), "prior": self.prior, "children": list(self.children)}


class Tree:
    """One problem's search tree (node 0 = root) and its rollout bookkeeping."""

    def __init__(self, sample: Sample, rollouts: int, rng: random.Random):
        self.sample, self.rollouts, self.rng = sample, rollouts, rng
        self.nodes = [Node(0, None, 0)]
        self.done = 0
        self.path: list[int] = [0]

    def steps_to(self, nid: int) -> list[Node]:
        out = []
        while nid:
            out.append(self.nodes[nid])
            nid = self.nodes[nid].parent  # type: ignore[assignment]
        return out[::-1]

    def select(self, node: Node, c: float, w: float) -> Node:
        kids = [self.nodes[i] for i in node.children]
        fresh = [n for n in kids if n.visits == 0]
        if fresh:
            best = max(n.prior if n.prior is not None else 0.0 for n in fresh)
            return self.rng.choice([n for n in fresh if (n.prior if n.prior is not None else 0.0) == best])
        ln = math.log(max(1, node.visits))
        return max(kids, key=lambda n: (n.q(w) + c * math.sqrt(ln / (1 + n.visits)), -n.id))

    def backprop(self, reward: float) -> None:
        for nid in self.path:
            self.nodes[nid].visits += 1
            self.nodes[nid].value_sum += reward
        self.done += 1
        self.path = [0]

    def record(self, round_: int, w: float) -> dict:
        terms = [n for n in self.nodes if n.terminal]
        return {"id": self.sample.id, "sample": self.sample.to_dict(), "round": round_, "rollouts": self.done,
                "nodes": [n.to_dict(w) for n in self.nodes], "solved": any(n.verdict == "correct" for n in terms),
                "stats": {"nodes": len(self.nodes) - 1, "terminals": len(terms),
                          "correct": sum(n.verdict == "correct" for n in terms)}}


def read_trees(path: str) -> list[dict]:
    """The tree records of a ``trees.jsonl`` (a torn last line from a kill is ignored)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                out.append(json.loads(line))
            except ValueError:
                break
    return out


def _open_append(path: str):
    """Open ``trees.jsonl`` for appending after cutting a torn last line (a kill in mid-write)."""
    if os.path.exists(path):
        with open(path, "rb+") as f:
            data = f.read()
            keep = data.rfind(b"\n") + 1
            if keep != len(data):
                f.truncate(keep)
    return open(path, "a", encoding="utf-8")


# ----------------------------------------------------------------------------------------- search
class Searcher:
    """Runs the search for a list of problems (see the module docstring)."""

    def __init__(self, cfg: MCTSConfig, teacher=None, scorer=None):
        self.cfg = cfg
        self.teacher = build_teacher(teacher if teacher is not None else cfg.teacher)
        self.scorer = scorer
        if self.scorer is None and cfg.ppm:
            from ..modeling.ppm import PPMScorer

            self.scorer = PPMScorer(cfg.ppm)
        self.bands = parse_schedule(cfg.rollouts) if isinstance(cfg.rollouts, dict) else None
        self.calls = 0

    def rollouts_for(self, s: Sample) -> int:
        if self.bands is None:
            return int(self.cfg.rollouts)  # type: ignore[arg-type]
        return int(samples_for(s.difficulty, self.bands, max(v for _, _, v in self.bands)))

    def _expand(self, jobs: list[tuple[Tree, Node]]) -> None:
        cfg = self.cfg
        prompts = [with_prefix(t.sample, [n.text for n in t.steps_to(node.id)], f"{cfg.round}.{node.id}")
                   for t, node in jobs]
        self.calls += 1
        params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.step_max_tokens,
                                seed=cfg.seed * 7919 + self.calls, stop=[STEP_END], extra=dict(cfg.extra))
        outs = self.teacher.generate(prompts, [cfg.k] * len(jobs), params)
        cands: list[tuple[Tree, Node, str, str, str]] = []
        for (t, node), rs in zip(jobs, outs, strict=True):
            node.expanded = True
            prev = "\n".join(n.code for n in t.steps_to(node.id) if n.code)
            for text in candidate_steps(rs):
                code = step_code(text)
                cands.append((t, node, text, code, (prev + "\n" + code).strip("\n")))
        results = execute([c[4] for c in cands], per_test=cfg.exec_timeout)
        new: list[tuple[Tree, Node]] = []
        for (t, node, text, code, _), res in zip(cands, results, strict=True):
            if res["status"] != "ok":
                continue
            child = Node(len(t.nodes), node.id, node.depth + 1, text, code)
            child.output = res["out"]
            if is_terminal(text):
                child.terminal = True
                v, _ = terminal_verdict(t.sample, text, res["out"], **cfg.verify_options)
                child.verdict, child.answer = v.verdict, v.extracted
            t.nodes.append(child)
            node.children.append(child.id)
            new.append((t, child))
        for _t, node in jobs:
            if not node.children:
                node.terminal, node.verdict = True, "dead"
        if self.scorer is not None and new:
            scores = self.scorer.score([(t.sample, [n.text for n in t.steps_to(c.id)]) for t, c in new])
            for (_, c), sc in zip(new, scores, strict=True):
                c.prior = float(sc)

    def _advance(self, t: Tree) -> Node | None:
        """Descend as far as possible without generating; return the node needing expansion (or None when
        the tree's rollouts are all done)."""
        cfg = self.cfg
        while t.done < t.rollouts:
            node = t.nodes[t.path[-1]]
            if node.terminal or node.depth >= cfg.max_depth:
                if not node.terminal:
                    node.terminal, node.verdict = True, "no_answer"
                t.backprop(1.0 if node.verdict == "correct" else -1.0)
                continue
            if not node.expanded:
                return node
            t.path.append(t.select(node, cfg.c, cfg.ppm_weight).id)
        return None

    def search(self, samples: list[Sample], on_tree=None) -> list[Tree]:
        """Search ``samples`` in lock-step batches; ``on_tree(tree)`` is called as each problem finishes."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        done: list[Tree] = []
        bar = tqdm(total=len(samples), desc="mcts", unit="problem", disable=None)
        queue = list(samples)
        active: list[Tree] = []
        try:
            while queue or active:
                while queue and len(active) < cfg.batch_problems:
                    s = queue.pop(0)
                    active.append(Tree(s, self.rollouts_for(s), random.Random(f"{cfg.seed}|{s.id}")))
                jobs, still = [], []
                for t in active:
                    node = self._advance(t)
                    if node is None:
                        done.append(t)
                        bar.update(1)
                        if on_tree:
                            on_tree(t)
                    else:
                        jobs.append((t, node))
                        still.append(t)
                active = still
                if jobs:
                    self._expand(jobs)
        finally:
            bar.close()
        return done


def run_mcts(cfg: MCTSConfig, out_dir: str, *, samples: list[Sample] | None = None, teacher=None,
             scorer=None) -> str:
    """Search every problem of ``cfg.input`` (or ``samples``) not yet in ``out_dir/trees.jsonl``; returns its path."""
    from ..io import read_samples, write_json

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, TREES)
    if samples is None:
        if not cfg.input:
            raise ValueError("mcts: set 'input' (problem sample files)")
        samples = list(read_samples(cfg.input))
    if cfg.limit is not None:
        samples = samples[: cfg.limit]
    have = {r["id"] for r in read_trees(path)}
    todo = [s for s in samples if s.id not in have]
    log.info("mcts: %d problems, %d already searched, %d to go", len(samples), len(samples) - len(todo), len(todo))
    if todo:
        searcher = Searcher(cfg, teacher=teacher, scorer=scorer)
        with _open_append(path) as f:
            def save(t: Tree) -> None:
                f.write(json.dumps(t.record(cfg.round, cfg.ppm_weight), ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())

            searcher.search(todo, on_tree=save)
        searcher.teacher.close()
    trees = [r for r in read_trees(path) if r["id"] in {s.id for s in samples}]
    write_json(os.path.join(out_dir, "mcts_summary.json"), summarize(trees))
    return path


def summarize(trees: list[dict]) -> dict:
    """Counts over tree records: problems, solved, nodes, terminal verdicts."""
    verdicts: dict[str, int] = {}
    for t in trees:
        for n in t["nodes"]:
            if n["terminal"]:
                verdicts[n["verdict"]] = verdicts.get(n["verdict"], 0) + 1
    return {"problems": len(trees), "solved": sum(t["solved"] for t in trees),
            "nodes": sum(len(t["nodes"]) - 1 for t in trees), "terminal_verdicts": verdicts}


def load_config(path_or_data, overrides: list[str] | None = None) -> MCTSConfig:
    from ..config import load_dataclass

    cfg, _, _ = load_dataclass(MCTSConfig, path_or_data, overrides)
    return cfg


def _cli():
    import click

    from ..clibase import Command

    @click.command("mcts", cls=Command)
    @click.argument("config")
    @click.option("--out", required=True, help="Output directory (trees.jsonl, mcts_summary.json).")
    @click.option("--set", "sets", multiple=True, help="Override a config key, e.g. --set k=8.")
    def mcts(config, out, sets):
        """Tree search over code-augmented steps: save per-problem trees (resumes after a kill)."""
        cfg = load_config(config, list(sets))
        path = run_mcts(cfg, out)
        click.echo(json.dumps(summarize(read_trees(path)), indent=1))
        click.echo(path)

    return mcts


mcts_cmd = _cli()
