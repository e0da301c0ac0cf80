"""The rStar-Math self-evolution stages; each one resumable (a ``stage.json`` marks it finished for its settings).

    problems -> init (round-0 policy) [-> ppm_init (the PPM's backbone)] -> for r in 1..R: r{r}/mcts -> r{r}/select -> r{r}/policy -> r{r}/ppm -> eval

A stage is skipped when its ``stage.json`` (a :class:`mmredstar.stages.Marker`) matches: its fingerprint
(its own settings, the recipe files they name, the fingerprint of the stage before it), the previous stage's
marker, and its outputs with their sha256; ``r{r}/mcts`` also resumes inside (finished problems' trees are kept).
``eval`` writes ``OUT/report.json``: ``greedy``, ``majority`` and ``ppm_search`` accuracies (each with ``n``
= generated samples per problem, ``n_items`` and ``se``) on the same held-out problems, the final PPM's
held-out ``pairwise_accuracy``, and per-round counts (problems searched, solved, SFT samples, pairs).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

from ...io import read_samples, write_json, write_samples
from ...schema import Response
from ...search.mcts import read_trees, run_mcts, summarize
from ...search.select import ppm_pairs, sft_samples
from ...stages import Marker, asset_sha256, fingerprint
from ...synth.steps import step_problems
from .config import RStarConfig, RStarError

log = logging.getLogger(__name__)
VERSION = 3
PPM_METRICS = ("eval_pairwise_accuracy", "eval_pairwise_accuracy_before", "train_pairwise_accuracy", "first_loss",
               "last_loss", "train_pairs", "eval_pairs")


def digest(obj) -> str:
    """A short content hash of JSON-able data (``mmredstar.stages.fingerprint``, 16 characters)."""
    return fingerprint(obj, 16)


def _weights(d: Path) -> dict[str, int]:
    """``{path: size}`` of the weight files of a model directory (too large to hash on every check)."""
    return {str(p): p.stat().st_size for pat in ("*.safetensors", "*.bin", "*.pt") for p in sorted(Path(d).glob(pat))}


class Stages:
    """Runs the stages of one config in order, skipping finished ones.

    Each stage's "done?" is the project's one mechanism (:class:`mmredstar.stages.Marker`): its fingerprint
    covers its own settings (with the sha256 of the recipe / model preset files they name) and the
    fingerprint of the stage before it; its input is the previous stage's marker (which holds that stage's
    outputs' sha256), so a stage redone upstream makes every later one stale; its outputs must still be there
    with their recorded sha256, and a trained model's weight files with their recorded sizes.
    """

    def __init__(self, cfg: RStarConfig):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.chain = digest({"version": VERSION, "seed": cfg.seed})
        self.prev: Path | None = None
        self.ran: list[str] = []

    def stage(self, name: str, own: dict, fn, outputs: dict, models: tuple = ()) -> dict:
        """Run ``fn()`` unless ``name`` is finished for ``own`` + everything before it; returns its stage.json.

        ``models``: model directories the stage writes (their weight files' sizes are recorded and checked)."""
        fp = digest({"stage": name, "own": own, "before": self.chain})
        self.chain = fp
        marker = Marker(self.out / name / "stage.json")
        inputs = [self.prev] if self.prev is not None else []
        self.prev = marker.path
        st = marker.check(fp, inputs)
        if st is not None and all(os.path.exists(p) and os.path.getsize(p) == n
                                  for p, n in st.get("weights", {}).items()):
            log.info("rstar: %s already done", name)
            return st
        (self.out / name).mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        log.info("rstar: running %s", name)
        extra = fn() or {}
        weights = {p: n for d in models for p, n in _weights(d).items()}
        st = marker.mark(fp, inputs, {k: str(v) for k, v in outputs.items()}, stage=name,
                         seconds=round(time.time() - t0, 2), weights=weights, **extra)
        self.ran.append(name)
        return st


def _train(recipe: str, overrides: dict, model: str, data: list[str], out: Path, cfg: RStarConfig,
           eval_data: list[str] | None = None) -> str:
    from ...training import run as train_run

    ov = {"model.name": model, "data.train": data, "output_dir": str(out), "train.seed": cfg.seed,
          "train.progress": False, **({"data.eval": eval_data} if eval_data else {})}
    if cfg.threads:
        ov["train.num_threads"] = cfg.threads
    ov.update(overrides)
    return train_run(recipe, ov)


def _held_out_split(ids: list[str], share: float, seed: int) -> set[str]:
    """The problems whose pairs are held out: those with ``unit_hash(seed, id) < share``, so a problem searched
    again in a later round stays on the same side (its pairs never train a PPM that is scored on it)."""
    from ...data.subset import unit_hash

    if share <= 0 or len(ids) < 2:
        return set()
    return {i for i in ids if unit_hash(seed, i) < share}


def _se(vals: list[float]) -> float:
    n = len(vals)
    if n < 2:
        return 0.0
    m = sum(vals) / n
    return math.sqrt(sum((v - m) ** 2 for v in vals) / (n - 1) / n)


def run_all(cfg: RStarConfig) -> dict:
    """Run (or resume) the whole workflow; returns the report (also written to ``OUT/report.json``)."""
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    S = Stages(cfg)
    out = S.out
    pc = cfg.problems

    # ---------------------------------------------------------------------------------- problems
    train_f, held_f = out / "problems" / "train.jsonl", out / "problems" / "held_out.jsonl"

    def make_problems():
        if pc.train:
            pool = list(read_samples(pc.train))
        else:
            pool = step_problems(pc.pool, seed=cfg.seed, levels=tuple(pc.levels), max_operand=pc.max_operand)
        if pc.held_out:
            held = list(read_samples(pc.held_out))
        else:
            seen = {s.question for s in pool}
            cand = step_problems(pc.held_out_n * 3 + 50, seed=cfg.seed + 1000, levels=tuple(pc.levels),
                                 max_operand=pc.max_operand, split="test")
            held = [s for s in cand if s.question not in seen][: pc.held_out_n]
        qs = {s.question for s in pool}
        clash = [s.id for s in held if s.question in qs]
        if clash:
            raise RStarError(f"{len(clash)} held-out problem(s) also appear in the training pool (e.g. {clash[0]})")
        write_samples(str(train_f), [s.without_responses() for s in pool])
        write_samples(str(held_f), held)
        return {"pool": len(pool), "held_out": len(held)}

    S.stage("problems", {"problems": cfg.to_dict()["problems"]}, make_problems, {"train": train_f, "held_out": held_f})
    pool = list(read_samples(str(train_f)))

    # ---------------------------------------------------------------------------------- round 0
    init_dir = out / "init" / "policy"
    ic = cfg.init

    def make_init():
        if ic.problems <= 0:
            return {"model": ic.model}
        sft = step_problems(ic.problems, seed=cfg.seed + 2000, levels=tuple(pc.levels), max_operand=pc.max_operand)
        for s in sft:
            s.responses = [Response(text=s.meta["reference_cot"], finish_reason="stop", verdict="correct", reward=1.0)]
        f = out / "init" / "sft.jsonl"
        write_samples(str(f), sft)
        _train(ic.recipe, ic.overrides, ic.model, [str(f)], init_dir, cfg)
        return {"sft_samples": len(sft)}

    S.stage("init", {"init": cfg.to_dict()["init"], "recipe_sha256": asset_sha256("train", ic.recipe),
                     "model_sha256": asset_sha256("models", ic.model)}, make_init,
            {"policy": init_dir / "config.json"} if ic.problems > 0 else {},
            models=(init_dir,) if ic.problems > 0 else ())
    init_model = str(init_dir) if ic.problems > 0 else ic.model
    init_sft = out / "init" / "sft.jsonl"
    init_long = None
    if cfg.ppm.start == "init_long":
        long_dir = out / "ppm_init" / "policy"

        def make_ppm_init():
            _train(ic.recipe, {**ic.overrides, **cfg.ppm_init.overrides}, init_model, [str(init_sft)], long_dir, cfg)

        S.stage("ppm_init", {"ppm_init": cfg.to_dict()["ppm_init"], "init": cfg.to_dict()["init"],
                             "recipe_sha256": asset_sha256("train", ic.recipe)}, make_ppm_init,
                {"policy": long_dir / "config.json"}, models=(long_dir,))
        init_long = str(long_dir)

    # ---------------------------------------------------------------------------------- rounds
    policy, ppm = init_model, None
    searched: dict[str, bool] = {}   # problem id -> solved in some round
    sft_files: list[str] = [str(init_sft)] if cfg.keep_init_data and ic.problems > 0 else []
    pair_files: list[str] = []
    held_files: list[str] = []
    rounds = []
    last_ppm_metrics: dict = {}
    for r in range(1, cfg.rounds + 1):
        rd = out / f"r{r}"
        unsolved = [s for s in pool if s.id in searched and not searched[s.id]]
        fresh = [s for s in pool if s.id not in searched]
        chosen = (unsolved + fresh)[: cfg.problems_per_round]
        mcfg = _round_mcts(cfg, policy, ppm, r)
        trees_f = rd / "mcts" / "trees.jsonl"

        def do_mcts(mcfg=mcfg, chosen=chosen, rd=rd):
            run_mcts(mcfg, str(rd / "mcts"), samples=chosen)
            return summarize(read_trees(str(rd / "mcts" / "trees.jsonl")))

        mst = S.stage(f"r{r}/mcts", {"mcts": mcfg.__dict__ | {"teacher": mcfg.teacher},
                                      "problems": [s.id for s in chosen]}, do_mcts, {"trees": trees_f})
        trees = read_trees(str(trees_f))
        for t in trees:
            searched[t["id"]] = searched.get(t["id"], False) or bool(t["solved"])
        sft_f, pt_f, ph_f = rd / "select" / "sft.jsonl", rd / "select" / "pairs_train.jsonl", rd / "select" / "pairs_held_out.jsonl"

        def do_select(trees=trees, sft_f=sft_f, pt_f=pt_f, ph_f=ph_f):
            sft = sft_samples(trees, cfg.select.sft_per_problem)
            pairs = ppm_pairs(trees, cfg.select.pairs_per_node, cfg.select.min_visits)
            held = _held_out_split(sorted({t["id"] for t in trees}), cfg.ppm_held_out, cfg.seed)
            write_samples(str(sft_f), sft)
            write_samples(str(pt_f), [p for p in pairs if p.meta["problem_id"] not in held])
            write_samples(str(ph_f), [p for p in pairs if p.meta["problem_id"] in held])
            n_held = sum(p.meta["problem_id"] in held for p in pairs)
            return {"sft": len(sft), "pairs": len(pairs), "held_out_problems": len(held), "held_out_pairs": n_held}

        sst = S.stage(f"r{r}/select", {"select": cfg.to_dict()["select"], "held_out": cfg.ppm_held_out}, do_select,
                      {"sft": sft_f, "pairs_train": pt_f, "pairs_held_out": ph_f})
        if sst.get("sft", 0) > 0:
            sft_files = (sft_files + [str(sft_f)]) if cfg.accumulate else [str(sft_f)]
        if sst.get("pairs", 0) - sst.get("held_out_pairs", 0) > 0:
            pair_files = (pair_files + [str(pt_f)]) if cfg.accumulate else [str(pt_f)]
        if sst.get("held_out_pairs", 0) > 0:      # the PPM is scored on the held-out pairs of the rounds it trains on
            held_files = (held_files + [str(ph_f)]) if cfg.accumulate else [str(ph_f)]
        elif not cfg.accumulate:
            held_files = []
        pol_dir = rd / "policy"
        start = {"init": init_model, "previous": policy, "base": cfg.init.model, "policy": policy}[cfg.policy.start]

        def do_policy(start=start, pol_dir=pol_dir, files=tuple(sft_files), r=r):
            if not files:
                raise RStarError(f"round {r}: the search solved no problem, so there is no SFT data; give the "
                                 "policy more rounds 0 training (init.overrides) or more rollouts (mcts.rollouts)")
            _train(cfg.policy.recipe, cfg.policy.overrides, start, list(files), pol_dir, cfg)

        S.stage(f"r{r}/policy", {"policy": cfg.to_dict()["policy"], "data": sft_files, "start": start,
                                  "recipe_sha256": asset_sha256("train", cfg.policy.recipe)}, do_policy,
                {"policy": pol_dir / "config.json"}, models=(pol_dir,))
        new_policy = str(pol_dir)
        ppm_dir = rd / "ppm"
        pstart = {"init": init_model, "previous": policy, "base": cfg.init.model, "policy": new_policy,
                  "init_long": init_long}[cfg.ppm.start]

        def do_ppm(pstart=pstart, ppm_dir=ppm_dir, files=tuple(pair_files), held=tuple(held_files), r=r):
            if not files:
                raise RStarError(f"round {r}: the trees hold no step pairs (no prefix with both a correct and a wrong "
                                 "continuation); raise mcts.k / mcts.rollouts or the policy's temperature")
            _train(cfg.ppm.recipe, cfg.ppm.overrides, pstart, list(files), ppm_dir, cfg, eval_data=list(held) or None)
            m = json.loads((ppm_dir / "metrics.json").read_text(encoding="utf-8"))
            return {k: m.get(k) for k in PPM_METRICS}

        pst = S.stage(f"r{r}/ppm", {"ppm": cfg.to_dict()["ppm"], "start": pstart, "data": pair_files, "eval": held_files,
                                     "recipe_sha256": asset_sha256("train", cfg.ppm.recipe)}, do_ppm,
                      {"ppm": ppm_dir / "ppm.json"}, models=(ppm_dir,))
        last_ppm_metrics = {k: pst.get(k) for k in PPM_METRICS}
        policy, ppm = new_policy, str(ppm_dir)
        rounds.append({"round": r, "problems": len(chosen), "unsolved_before": len(unsolved),
                       "solved": sum(bool(t["solved"]) for t in trees), "trees": mst.get("problems"),
                       "sft_samples": sst.get("sft"), "pairs": sst.get("pairs"),
                       "ppm_pairwise_accuracy": last_ppm_metrics.get("eval_pairwise_accuracy"),
                       "unsolved_after": sum(1 for v in searched.values() if not v)})

    # ---------------------------------------------------------------------------------- eval
    rep_f = out / "report.json"

    def do_eval():
        report = evaluate_methods(cfg, policy, ppm, list(read_samples(str(held_f))), out / "eval")
        report.update(ppm={"pairwise_accuracy": last_ppm_metrics.get("eval_pairwise_accuracy"),
                           "pairwise_accuracy_before_training": last_ppm_metrics.get("eval_pairwise_accuracy_before"),
                           "train_pairwise_accuracy": last_ppm_metrics.get("train_pairwise_accuracy"),
                           "held_out_pairs": last_ppm_metrics.get("eval_pairs"), "path": ppm},
                      pairwise_accuracy=last_ppm_metrics.get("eval_pairwise_accuracy"),
                      policy=policy, rounds=rounds, config=cfg.path)
        write_json(rep_f, report)

    S.stage("eval", {"eval": cfg.to_dict()["eval"]}, do_eval, {"report": rep_f})
    rep = json.loads(rep_f.read_text(encoding="utf-8"))
    rep["stages_run"] = S.ran
    return rep


def _round_mcts(cfg: RStarConfig, policy: str, ppm: str | None, r: int):
    import dataclasses

    teacher = dict(cfg.mcts.teacher)
    teacher.setdefault("kind", "transformers")
    teacher["model"] = policy
    return dataclasses.replace(cfg.mcts, teacher=teacher, ppm=ppm, round=r, seed=cfg.seed * 100 + r, input="")


def evaluate_methods(cfg: RStarConfig, policy: str, ppm: str | None, held: list, out: Path) -> dict:
    """greedy (1 sample), majority (N samples) and ppm_search (N candidates per step) on ``held``."""
    from ...evaluation.runner import ModelEntry, evaluate_samples, read_items
    from ...evaluation.search import CodeStepsConfig, CodeStepsTeacher, PPMSearchConfig, PPMSearchTeacher
    from ...evaluation.spec import BenchSpec

    e = cfg.eval
    n = e.samples
    res = {"held_out_problems": len(held), "samples": n}
    runs = {
        "greedy": (CodeStepsTeacher(CodeStepsConfig(model=policy, batch_size=e.batch_size)), 1, 0.0, ["pass@1"]),
        "majority": (CodeStepsTeacher(CodeStepsConfig(model=policy, batch_size=e.batch_size,
                                                      include_greedy=e.include_greedy)), n, e.temperature,
                     [f"maj@{n}"]),
    }
    if ppm:
        runs["ppm_search"] = (PPMSearchTeacher(PPMSearchConfig(model=policy, ppm=ppm, k=n, beam=e.beam,
                                                               max_depth=cfg.mcts.max_depth,
                                                               step_max_tokens=cfg.mcts.step_max_tokens,
                                                               candidate_temperature=e.temperature,
                                                               include_greedy=e.include_greedy,
                                                               batch_size=e.batch_size)), 1, e.temperature, ["pass@1"])
    for name, (teacher, k, temp, metrics) in runs.items():
        spec = BenchSpec(prompt="{question}", n=k, temperature=temp, top_p=1.0, max_new_tokens=e.max_new_tokens,
                         seed=cfg.seed, metrics=metrics, name="rstar_held_out")
        d = out / name
        r = evaluate_samples(ModelEntry(model=policy, label=name), spec, held, d, teacher=teacher, progress=False)
        teacher.close()
        items = list(read_items(str(d / "samples.jsonl")).values())
        if name == "majority":
            from ...evaluation.metrics import maj_at_k

            vals = [float(maj_at_k([x.get("key") for x in it["responses"]],
                                   [x.get("verdict") == "correct" for x in it["responses"]], n)) for it in items]
        else:
            vals = [float(it["correct"] > 0) for it in items]
        acc = sum(vals) / max(1, len(vals))
        res[name] = {"accuracy": round(acc, 4), "n": n if name != "greedy" else 1, "samples_budget": n,
                     "n_items": len(vals), "se": round(_se(vals), 4), "pass@1": r.get("pass@1")}
    res["greedy"]["note"] = "greedy decoding is deterministic: 1 sample per problem (N copies would agree)"
    return res
