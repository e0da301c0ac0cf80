"""Training data from saved trees: SFT trajectories for the next policy, step preference pairs for the PPM.

- **SFT** (rStar-Math 3.3): per problem, the visited trajectories that end in a correct answer, ranked by the
  mean Q of their steps; the top ``sft_per_problem`` become SFT samples (one response: the steps joined by
  ``<end_of_step>``; ``meta.mean_q``).
- **PPM pairs**: at every tree level, for each node with at least one child on a path to a correct answer
  and one on a path to a wrong one, the children sharing that prefix are paired: positives are the highest-Q
  children whose subtree reaches a correct answer, negatives the lowest-Q children whose subtree reaches a
  wrong one (``pairs_per_node`` of each, all combinations). Terminal steps count too (a correct vs a wrong
  final step). Each pair is a schema ``Pair`` whose prompt ends with the shared prefix as an assistant
  message and whose chosen / rejected responses are the two steps (``meta.level``, ``meta.q``).

    from mmredstar.search.select import sft_samples, ppm_pairs
    sft = sft_samples(read_trees("runs/mcts/trees.jsonl"), per_problem=2)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..schema import Pair, Response, Sample
from ..synth.steps import join_steps
from .steps import with_prefix


@dataclass
class SelectConfig:
    """What to take from the trees (the ``select`` section of an rStar workflow config)."""

    sft_per_problem: int = 2
    """Correct trajectories per problem kept as SFT data (top by mean step Q)."""
    pairs_per_node: int = 2
    """Positives and negatives per shared prefix (rStar-Math: 2 each)."""
    min_visits: int = 1
    """Steps visited fewer times than this are not used as PPM positives / negatives."""


def _verdict(n: dict) -> str | None:
    v = n["verdict"]
    return v if v in ("correct", "wrong", "no_answer", "error") else ("no_answer" if v else None)


def _index(tree: dict) -> tuple[dict, dict]:
    nodes = {n["id"]: n for n in tree["nodes"]}
    reach: dict[int, set] = {}

    def walk(nid: int) -> set:
        n = nodes[nid]
        out = {n["verdict"]} if n["terminal"] and n["visits"] else set()
        for c in n["children"]:
            out |= walk(c)
        reach[nid] = out
        return out

    walk(0)
    return nodes, reach


def _path(nodes: dict, nid: int) -> list[dict]:
    out = []
    while nid:
        out.append(nodes[nid])
        nid = nodes[nid]["parent"]
    return out[::-1]


def trajectories(tree: dict) -> list[tuple[float, list[dict]]]:
    """(mean step Q, steps) of every visited trajectory ending in a correct answer, best first."""
    nodes, _ = _index(tree)
    out = []
    for n in nodes.values():
        if n["terminal"] and n["verdict"] == "correct" and n["visits"]:
            steps = _path(nodes, n["id"])
            out.append((sum(s["q"] for s in steps) / len(steps), steps))
    out.sort(key=lambda x: (-x[0], len(x[1]), x[1][-1]["id"]))
    return out


def sft_samples(trees: list[dict], per_problem: int = 2) -> list[Sample]:
    """SFT samples from trees (see the module docstring); problems never solved give none."""
    out = []
    for t in trees:
        base = Sample.from_dict(t["sample"]).without_responses()
        seen = set()
        for mq, steps in trajectories(t):
            text = join_steps([s["text"] for s in steps])
            if text in seen:
                continue
            seen.add(text)
            s = base.without_responses()
            s.responses = [Response(text=text, finish_reason="stop", verdict="correct", reward=1.0,
                                    meta={"mean_q": round(mq, 6), "round": t.get("round"), "source": "mcts"})]
            out.append(s)
            if len(seen) >= per_problem:
                break
    return out


def ppm_pairs(trees: list[dict], per_node: int = 2, min_visits: int = 1) -> list[Pair]:
    """Step preference pairs sharing a prefix (see the module docstring)."""
    out: list[Pair] = []
    for t in trees:
        sample = Sample.from_dict(t["sample"]).without_responses()
        nodes, reach = _index(t)
        for n in nodes.values():
            kids = [nodes[c] for c in n["children"] if nodes[c]["visits"] >= min_visits]
            pos = sorted((k for k in kids if "correct" in reach[k["id"]] and k["q"] > 0), key=lambda k: -k["q"])
            neg = sorted((k for k in kids if reach[k["id"]] - {"correct"} and k["q"] < 0), key=lambda k: k["q"])
            if not pos or not neg:
                continue
            prefix = [s["text"] for s in _path(nodes, n["id"])]
            prompt = with_prefix(sample, prefix, "")
            prompt.id = ""
            for p in pos[:per_node]:
                for q in neg[:per_node]:
                    out.append(Pair.from_sample(
                        prompt, Response(text=p["text"], verdict=_verdict(p), meta={"q": p["q"]}),
                        Response(text=q["text"], verdict=_verdict(q), meta={"q": q["q"]}),
                        level=f"{n['depth'] + 1}", problem_id=t["id"], source_round=t.get("round")))
    return out
