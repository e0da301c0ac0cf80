"""The study's stages: cells, pool, subsets, training, evaluation, the table; ``run``, ``report_only``, ``plan_text``."""

from __future__ import annotations

import copy
import json
import logging
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from mmredstar.data.subset import build_subsets, parse_size, parse_sizes, size_label
from mmredstar.evaluation.metrics import paired_difference
from mmredstar.evaluation.report import build_table, collect_results, write_report
from mmredstar.evaluation.runner import ModelEntry, backend_spec, evaluate_samples, read_items
from mmredstar.evaluation.spec import load_bench_samples, load_spec, spec_from_dict
from mmredstar.generate import build_teacher
from mmredstar.io import atomic_write, read_samples, write_json, write_samples
from mmredstar.levels import parse_bands
from mmredstar.synth.arithmetic import arithmetic_problems
from mmredstar.synth.builtins import arith_spec
from mmredstar.training import run as train_run
from mmredstar.training.runner import last_checkpoint, read_metrics

from ...data.inputs import data_root, input_name, named_sets
from ...stages import Marker, asset_sha256, fingerprint
from .config import STUDY_VERSION, StudyConfig, load_config

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------- cells
@dataclass
class Cell:
    """One training run of the grid."""

    grid: str
    """``scale`` or ``difficulty``."""
    name: str
    """The cell's name in its grid (``4k``, ``all``, ``L7-9``)."""
    subset: str
    """The subset file it trains on."""
    output_dir: str
    """Where the run writes."""
    overrides: dict
    """Recipe overrides (the config's, then ``data.train``, ``output_dir``, ``model.name``)."""
    size: int | None = None
    """Requested records (scale cells; ``None`` = all)."""

    @property
    def label(self) -> str:
        """The row / eval label: ``<grid>-<name>``."""
        return f"{self.grid}-{self.name}"


def _subset_dirs(cfg: StudyConfig) -> tuple[Path, Path]:
    return Path(cfg.out) / "subsets" / "scale", Path(cfg.out) / "subsets" / "difficulty"


def expand(cfg: StudyConfig) -> list[Cell]:
    """The cells of the study, in table order (scale ladder, then difficulty bands)."""
    sdir, ddir = _subset_dirs(cfg)
    cells = []

    def cell(grid, name, subset, size=None):
        out = str(Path(cfg.out) / "cells" / grid / name)
        ov = dict(cfg.overrides)
        ov["data.train"] = [str(subset)]
        ov["output_dir"] = out
        if cfg.model:
            ov["model.name"] = cfg.model
        return Cell(grid, name, str(subset), out, ov, size)

    if cfg.scale.enabled:
        for s in parse_sizes(cfg.scale.sizes):
            lab = size_label(s)
            cells.append(cell("scale", lab, sdir / f"{lab}.jsonl", s))
    if cfg.difficulty.enabled:
        size = parse_size(cfg.difficulty.size) if cfg.difficulty.size is not None else None
        for b in parse_bands(cfg.difficulty.bands):
            name = b.name if size is None else f"{b.name}_{size_label(size)}"
            cells.append(cell("difficulty", b.name, ddir / f"{name}.jsonl", size))
    return cells


def _log(msg: str) -> None:
    log.info(f"[study] {msg}")


# ----------------------------------------------------------------------------------------- stage 1: pool
def _curate_config(cfg: StudyConfig, problems: str, out: Path, scorer_dir: str | None) -> dict:
    b = cfg.pool.builtin
    conf = {
        "out": str(out), "inputs": [{"path": problems}],
        "difficulty": {"source": "labels"},
        "schedule": {"1-4": 2, "5-7": 3, "8-10": 4},
        "default_n": 2,
        "teacher": {"kind": "scripted", "error_rate": {"1-4": 0.1, "5-7": 0.25, "8-10": 0.4}, "no_answer_rate": 0.05,
                    "think": True},
        "sampling": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 512, "seed": b.seed},
        "select": {"sft": {"dedupe": True}, "dpo": {"enabled": False}, "rl": {"enabled": False}},
        "report": {"plots": False}, "unit_size": 64, "progress": cfg.progress,
    }
    conf = _merge(conf, b.curate)
    if scorer_dir is not None:
        conf["difficulty"] = {**conf["difficulty"], "source": "trained", "params": {"model": scorer_dir}}
    return conf


def _merge(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` (nested mappings merged key by key; other values replaced).

    >>> _merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}, "c": 4})
    {'a': {'x': 1, 'y': 3}, 'b': 1, 'c': 4}
    """
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def prepare_pool(cfg: StudyConfig) -> list[str]:
    """The pool's files (building the built-in pool, re-scoring it, when the config says so)."""
    pool_dir = Path(cfg.out) / "pool"
    if cfg.pool.builtin is not None:
        from mmredstar.curate import run as curate_run
        from mmredstar.io import write_samples
        from mmredstar.synth.arithmetic import arithmetic_problems

        b = cfg.pool.builtin
        pool_dir.mkdir(parents=True, exist_ok=True)
        problems = pool_dir / "problems.jsonl"
        ss = arithmetic_problems(b.problems, b.seed, levels=tuple(b.levels), max_operand=b.max_operand)
        fresh = pool_dir / "problems.new.jsonl"
        write_samples(fresh, ss)
        if problems.exists() and problems.read_bytes() == fresh.read_bytes():
            fresh.unlink()             # unchanged: keep the file (and its mtime: curation sees its input as is)
        else:
            os.replace(fresh, problems)
        scorer_dir = None
        if b.scorer:
            from mmredstar.difficulty.train import summary
            from mmredstar.difficulty.train import train as train_scorer

            scorer_dir = str(pool_dir / "scorer")
            _log(f"pool: training the difficulty scorer {b.scorer} -> {scorer_dir}")
            _log(summary(train_scorer(b.scorer, {"out": scorer_dir, "progress": cfg.progress})))
        _log(f"pool: curating {len(ss)} generated problems with the scripted teacher -> {pool_dir / 'curate'}")
        res = curate_run(_curate_config(cfg, str(problems), pool_dir / "curate", scorer_dir))
        files = [str(Path(res.out) / "sft.jsonl")]
    else:
        from mmredstar.training.data import resolve_data

        specs = cfg.pool.path if isinstance(cfg.pool.path, list) else [cfg.pool.path]
        files = [f.path for f in resolve_data(specs, root=cfg.pool.root, work_dir=str(pool_dir))]
    if cfg.pool.rescore:
        from mmredstar.difficulty.score import score_file

        out = pool_dir / "rescored.jsonl"
        _log(f"pool: re-scoring difficulty with {cfg.pool.rescore} -> {out}")
        score_file(cfg.pool.rescore, files, out, progress=cfg.progress, num_threads=cfg.threads)
        files = [str(out)]
    return files


def builtin_test_set(cfg: StudyConfig, pool_files: list[str]) -> tuple[dict, str] | None:
    """The built-in held-out benchmark: (inline spec, data file) with problems absent from the pool."""
    bt = cfg.eval.builtin_test
    if bt is None:
        return None

    allowed = {"problems", "seed", "levels", "max_new_tokens", "max_operand"}
    if set(bt) - allowed:
        raise ValueError(f"eval.builtin_test: unknown keys {sorted(set(bt) - allowed)}; allowed: {sorted(allowed)}")
    seen = {" ".join(s.question.split()) for s in read_samples(pool_files)}
    n = int(bt.get("problems", 40))
    pool_max = cfg.pool.builtin.max_operand if cfg.pool.builtin is not None else None
    try:
        test = arithmetic_problems(n, int(bt.get("seed", 1)), levels=tuple(bt.get("levels", [1, 2])), split="test",
                                   max_operand=bt.get("max_operand", pool_max), exclude=seen)
    except ValueError as e:
        raise ValueError(f"eval.builtin_test: {e} (problems in the pool are held out of the test set)") from None
    path = Path(cfg.out) / "pool" / "test.jsonl"
    write_samples(path, test)
    spec = arith_spec(int(bt.get("max_new_tokens", 64)),
                      "held-out generated arithmetic (not in the pool), boxed answers, pass@1")
    return spec, str(path)


# ----------------------------------------------------------------------------------------- stage 2: subsets
def build_grid_subsets(cfg: StudyConfig, pool_files: list[str]) -> dict[str, list[dict]]:
    """The scale ladder and the difficulty bands (``mmredstar.data.subset``); returns their manifests."""
    sdir, ddir = _subset_dirs(cfg)
    out = {}
    if cfg.scale.enabled:
        out["scale"] = build_subsets(pool_files, sdir, sizes=cfg.scale.sizes, seed=cfg.seed, progress=cfg.progress)
    if cfg.difficulty.enabled:
        sizes = [cfg.difficulty.size] if cfg.difficulty.size is not None else None
        out["difficulty"] = build_subsets(pool_files, ddir, bands=cfg.difficulty.bands, sizes=sizes, seed=cfg.seed,
                                          progress=cfg.progress)
    return out


# ----------------------------------------------------------------------------------------- stage 3: train
def cell_fingerprint(cfg: StudyConfig, cell: Cell) -> dict:
    """What decides a cell's trained model besides its subset (an input of the marker): the recipe (name and
    the file's bytes) and the overrides."""
    return {"version": STUDY_VERSION, "recipe": cfg.recipe, "recipe_sha256": asset_sha256("train", cfg.recipe),
            "overrides": cell.overrides}


def _cell_marker(cell: Cell) -> Marker:
    return Marker(Path(cell.output_dir) / "cell.json")


def cell_done(cfg: StudyConfig, cell: Cell) -> bool:
    """Whether a cell's model is trained from exactly its recipe, overrides and subset (and its metrics are there)."""
    return _cell_marker(cell).check(fingerprint(cell_fingerprint(cfg, cell)), [cell.subset]) is not None


def train_cell(cfg: StudyConfig, cell: Cell) -> dict:
    """Train one cell (an ordinary ``mmredstar.training.run``); writes ``cell.json``; returns its metrics."""
    fp = cell_fingerprint(cfg, cell)
    ov = copy.deepcopy(cell.overrides)  # applying overrides updates nested dicts: keep the cell's (the fingerprint) as is
    if last_checkpoint(cell.output_dir) and not (Path(cell.output_dir) / "metrics.json").exists():
        ov["train.resume"] = True   # a killed cell continues from its last complete checkpoint
    else:
        ov["train.overwrite"] = True  # the cell is not done for this config: a finished run there is stale
    t0 = time.time()
    train_run(cfg.recipe, ov)
    m = read_metrics(cell.output_dir)
    _cell_marker(cell).mark(fingerprint(fp), [cell.subset], {"metrics": Path(cell.output_dir) / "metrics.json"},
                            **fp, grid=cell.grid, name=cell.name, seconds=round(time.time() - t0, 2))
    return m


# ----------------------------------------------------------------------------------------- stage 4: eval
def bench_specs(cfg: StudyConfig, pool_files: list[str] | None):
    """(spec, data path or None) for every benchmark of the study."""
    ov = cfg.eval.spec_overrides()
    out = []
    for b in cfg.eval.benches:
        if isinstance(b, dict):
            spec = spec_from_dict({**b["spec"], **ov}, name=str(b["name"]))
        else:
            spec = load_spec(b, ov or None)
        out.append((spec, cfg.eval.data.get(spec.name)))
    if cfg.eval.builtin_test is not None:
        got = builtin_test_set(cfg, pool_files or [])
        spec_d, path = got
        out.append((spec_from_dict({**spec_d, **ov}, name="arith_heldout"), path))
    return out


def eval_entries(cfg: StudyConfig, cells: list[Cell]) -> list[tuple[str, str]]:
    """(label, model) rows to evaluate: ``base`` (when asked) then every cell."""
    rows = []
    if cfg.eval.include_base:
        from mmredstar.training.config import load_recipe

        rows.append(("base", cfg.model or load_recipe(cfg.recipe).model.name))
    rows += [(c.label, c.output_dir) for c in cells]
    return rows


def run_eval(cfg: StudyConfig, cells: list[Cell], pool_files: list[str], retrained: set[str]) -> list[dict]:
    """Evaluate every row on every benchmark (resumable per item); returns the result dicts."""
    specs = bench_specs(cfg, pool_files)
    samples = {s.name: load_bench_samples(s, d, limit=cfg.eval.limit) for s, d in specs}
    out = Path(cfg.out) / "eval"
    results = []
    for label, model in eval_entries(cfg, cells):
        bspec = backend_spec(cfg.eval.backend, model, cfg.eval.backend_options_for())
        teacher = None
        try:
            for spec, d in specs:
                teacher = teacher or build_teacher(bspec)
                results.append(evaluate_samples(ModelEntry(model=model, label=label), spec, samples[spec.name],
                                                out / label / spec.name, teacher=teacher, backend=bspec,
                                                chunk_size=cfg.eval.chunk_size or 64, overwrite=label in retrained,
                                                progress=cfg.progress, data=spec.data_path(d)))
        finally:
            if teacher is not None:
                teacher.close()
    return results


# ----------------------------------------------------------------------------------------- stage 5: table
def build_report(cfg: StudyConfig, cells: list[Cell], results: list[dict], manifests: dict | None = None) -> dict:
    """``study.json``: rows (cells) x benchmarks + AVG (pass@1, %), with each cell's data and training facts."""
    benches, _, table = build_table(results)
    # share of responses with a final answer in the required format (1 - the no_answer share), in %
    answered = {(r["label"], r["bench"]): round(100.0 * (1.0 - (r.get("verdicts") or {}).get("no_answer", 0.0)), 2)
                for r in results if r.get("verdicts")}
    by_cell = {c.label: c for c in cells}
    rows = []
    labels = (["base"] if any(r["label"] == "base" for r in results) else []) + [c.label for c in cells]
    for lab in labels:
        c = by_cell.get(lab)
        row = {"label": lab, "grid": c.grid if c else "base", "cell": c.name if c else "base",
               "scores": table.get(lab, {b: None for b in benches + ["AVG"]}),
               "answered": {b: answered.get((lab, b)) for b in benches}}
        if c is not None:
            man_p = Path(c.subset).with_suffix(".manifest.json")
            if man_p.exists():
                man = json.loads(man_p.read_text(encoding="utf-8"))
                row.update(records=man["records"], prompts=man["prompts"], bands=man["counts"]["band"],
                           subset_ids_sha256=man["ids_sha256"])
            mp = Path(c.output_dir) / "metrics.json"
            if mp.exists():
                m = json.loads(mp.read_text(encoding="utf-8"))
                row.update(steps=m.get("steps"), first_loss=m.get("first_loss"), last_loss=m.get("last_loss"),
                           train_runtime_s=m.get("runtime_s"))
        rows.append(row)
    se = {(r["label"], r["bench"]): round(100.0 * r["se"], 2) for r in results if r.get("se") is not None}
    by_level = _builtin_by_level(cfg, results)
    for row in rows:
        row["se"] = {b: se.get((row["label"], b)) for b in benches}
        if by_level:
            row["by_level"] = by_level["rows"].get(row["label"])
    n_items = {r["bench"]: r.get("n_items") for r in results}
    rep = {"title": cfg.description or "Data-composition study", "recipe": cfg.recipe,
           "model": cfg.model, "seed": cfg.seed, "benchmarks": benches, "metric": "pass@1 (%)",
           "n_items": n_items, "rows": rows, "results": results}
    if by_level:
        rep["levels"] = by_level["levels"]
    margins = _paired_margins(cfg, cells, benches)
    if margins:
        rep["margins"] = margins
    return rep


def _item_scores(cfg: StudyConfig, label: str, bench: str) -> dict[str, float]:
    """``{item id: score in [0, 1]}`` of one row on one benchmark, from its evaluated items (``samples.jsonl``)."""
    items = Path(cfg.out) / "eval" / label / bench / "samples.jsonl"
    if not items.exists():
        return {}
    return {d["id"]: d["correct"] / d["n"] for d in read_items(items, repair=False).values() if d.get("n")}


def _paired_margins(cfg: StudyConfig, cells: list[Cell], benches: list[str]) -> list[dict]:
    """Within each grid, every cell minus the grid's first cell (the smallest size, the first band listed) on the
    same items, per benchmark: ``paired_difference`` (points, paired SE, z, wins / losses). Cells of one grid are
    scored on the same items, so the paired SE is the honest one for "harder beats easier" or "more beats less";
    the unpaired ``sqrt(se_a^2 + se_b^2)`` overstates it when the cells agree on most items."""
    out = []
    for grid in dict.fromkeys(c.grid for c in cells):
        ref, *rest = [c for c in cells if c.grid == grid]
        for bench in benches:
            base = _item_scores(cfg, ref.label, bench)
            for c in rest:
                mine = _item_scores(cfg, c.label, bench)
                if base and mine:
                    out.append({"grid": grid, "cell": c.name, "vs": ref.name, "bench": bench,
                                **paired_difference(mine, base)})
    return out


def _builtin_by_level(cfg: StudyConfig, results: list[dict]) -> dict | None:
    """pass@1 (%) per level of the built-in held-out set, per row, from the evaluated items (``samples.jsonl``):
    ``{"levels": {level: items}, "rows": {label: {level: percent}}}``; ``None`` without a built-in test set."""
    test = Path(cfg.out) / "pool" / "test.jsonl"
    if cfg.eval.builtin_test is None or not test.exists():
        return None
    level = {s.id: str((s.meta or {}).get("level", "?")).removeprefix("Level ") for s in read_samples([test])}
    counts: dict[str, int] = {}
    for lv in level.values():
        counts[lv] = counts.get(lv, 0) + 1
    rows = {}
    for r in results:
        scores = _item_scores(cfg, r["label"], r["bench"]) if r["bench"] == "arith_heldout" else {}
        if not scores:
            continue
        hit: dict[str, list[float]] = {}
        for i, v in scores.items():
            if i in level:
                hit.setdefault(level[i], []).append(v)
        rows[r["label"]] = {lv: round(100.0 * sum(v) / len(v), 1) for lv, v in sorted(hit.items())}
    return {"levels": dict(sorted(counts.items())), "rows": rows} if rows else None


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def render_markdown(report: dict) -> str:
    """``study.md``: one table in the paper's layout (rows = cells, columns = benchmarks + AVG; ± the binomial
    standard error), pass@1 per level of the built-in held-out set when there is one, the answered share."""
    cols = report["benchmarks"] + ["AVG"]
    lines = [f"# {report['title']}", "",
             f"Recipe `{report['recipe']}`" + (f", base model `{report['model']}`" if report.get("model") else "")
             + f", subset seed {report['seed']}. {report['metric']}; items per benchmark: "
             + ", ".join(f"{b} {n}" for b, n in report["n_items"].items()) + ".", "",
             "| Grid | Cell | Records | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 3)]
    def cell(r, c):
        v, e = r["scores"].get(c), (r.get("se") or {}).get(c)
        return _fmt(v) + (f" ± {e:.1f}" if v is not None and e is not None else "")

    for r in report["rows"]:
        lines.append(f"| {r['grid']} | {r['cell']} | {r.get('records', '-')} | "
                     + " | ".join(cell(r, c) for c in cols) + " |")
    if report.get("levels"):
        lvs = list(report["levels"])
        lines += ["", "arith_heldout pass@1 (%) by level (= number of operations; items per level: "
                  + ", ".join(f"L{lv} {n}" for lv, n in report["levels"].items()) + "):", "",
                  "| Grid | Cell | " + " | ".join(f"L{lv}" for lv in lvs) + " |", "|" + "---|" * (len(lvs) + 2)]
        for r in report["rows"]:
            bl = r.get("by_level") or {}
            lines.append(f"| {r['grid']} | {r['cell']} | " + " | ".join(_fmt(bl.get(lv)) for lv in lvs) + " |")
    if report.get("margins"):
        lines += ["", "Paired differences on the same items (each cell minus its grid's first cell; points ± paired "
                  "SE, z, items the cell got right / wrong where the other did not):", "",
                  "| Grid | Cell | vs | Benchmark | Points | z | Wins / losses |", "|---|---|---|---|---|---|---|"]
        for m in report["margins"]:
            lines.append(f"| {m['grid']} | {m['cell']} | {m['vs']} | {m['bench']} | {m['points']:+.1f} ± {m['se']:.1f} | "
                         f"{_fmt(m['z'])} | {m['wins']} / {m['losses']} |")
    lines += ["", "Answered in the required format (% of responses with a final answer; the rest are no_answer):", "",
              "| Grid | Cell | " + " | ".join(report["benchmarks"]) + " |", "|" + "---|" * (len(report["benchmarks"]) + 2)]
    for r in report["rows"]:
        lines.append(f"| {r['grid']} | {r['cell']} | "
                     + " | ".join(_fmt(r.get("answered", {}).get(b)) for b in report["benchmarks"]) + " |")
    lines += ["", "Records: training samples in the cell's subset (its manifest beside it: sources and hashes, "
              "counts per band / domain). Losses and steps per cell are in study.json."]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: str | os.PathLike) -> str | None:
    """``study.png``: AVG (and each benchmark) vs training records for the scale grid; AVG per difficulty band."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # a convenience
        return None
    scale = [r for r in report["rows"] if r["grid"] == "scale" and r.get("records")]
    diff = [r for r in report["rows"] if r["grid"] == "difficulty"]
    base = next((r for r in report["rows"] if r["grid"] == "base"), None)
    panels = [p for p in (scale, diff) if p]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    ax_i = 0
    def answered_avg(r):
        vals = [v for v in (r.get("answered") or {}).values() if v is not None]
        return sum(vals) / len(vals) if vals else None

    if scale:
        ax = axes[0][ax_i]
        ax_i += 1
        xs = [r["records"] for r in scale]
        for b in report["benchmarks"] + ["AVG"]:
            ys = [r["scores"].get(b) for r in scale]
            if all(y is not None for y in ys) and (b == "AVG" or len(report["benchmarks"]) > 1):
                ax.plot(xs, ys, marker="o", lw=2.5 if b == "AVG" else 1, label=f"pass@1 {b}")
        ans = [answered_avg(r) for r in scale]
        if all(a is not None for a in ans):
            ax.plot(xs, ans, marker="s", ls=":", c="tab:green", label="answered (format)")
        if base and base["scores"].get("AVG") is not None:
            ax.axhline(base["scores"]["AVG"], ls="--", c="grey", label="base pass@1 AVG")
        ax.set_xscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.set_ylim(0, 100)
        ax.set_xlabel("training samples")
        ax.set_ylabel("%")
        ax.set_title("accuracy vs data scale")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if diff:
        ax = axes[0][ax_i]
        names = [r["cell"] for r in diff]
        xs = list(range(len(diff)))
        ax.bar([x - 0.2 for x in xs], [r["scores"].get("AVG") or 0.0 for r in diff], 0.4, color="tab:orange",
               label="pass@1 AVG")
        ax.bar([x + 0.2 for x in xs], [answered_avg(r) or 0.0 for r in diff], 0.4, color="tab:green", alpha=0.5,
               label="answered (format)")
        if base and base["scores"].get("AVG") is not None:
            ax.axhline(base["scores"]["AVG"], ls="--", c="grey", label="base pass@1 AVG")
        ax.set_xticks(xs, names)
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.set_title("accuracy by training difficulty")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    fig.suptitle(report["title"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def write_outputs(cfg: StudyConfig, cells: list[Cell], results: list[dict]) -> dict:
    """Write ``study.json``, ``study.md``, ``study.png`` and the evaluation runner's ``eval/report.*``."""
    out = Path(cfg.out)
    write_report(out / "eval", results, title=f"{cfg.description or 'study'}: every row")
    rep = build_report(cfg, cells, results)
    write_json(out / "study.json", rep)
    with atomic_write(out / "study.md") as f:
        f.write(render_markdown(rep))
    plot(rep, out / "study.png")
    return rep


# ----------------------------------------------------------------------------------------- run / plan
def _select(cells: list[Cell], only: tuple[str, ...] | None) -> list[Cell]:
    if not only:
        return cells
    keep = [c for c in cells if c.grid in only or c.label in only or c.name in only]
    if not keep:
        raise ValueError(f"--only {list(only)} matches no cell; cells: {[c.label for c in cells]}")
    return keep


def run(config, overrides: list[str] | dict | None = None, *, only: tuple[str, ...] | None = None,
        train_only: bool = False) -> dict:
    """Every stage of the study (each resumable); returns the study report (``study.json``)."""
    cfg = load_config(config, overrides)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    if not cfg.progress:
        os.environ.setdefault("TQDM_DISABLE", "1")
    t0 = time.time()
    cells = _select(expand(cfg), only)
    pool = prepare_pool(cfg)
    if cfg.eval.builtin_test is not None:
        builtin_test_set(cfg, pool)   # a held-out set that cannot be made fails now, before any training
    mans = build_grid_subsets(cfg, pool)
    for grid, ms in mans.items():
        _log(f"subsets ({grid}): " + ", ".join(f"{m['name']} {m['records']}" for m in ms))
        empty = [m["name"] for m in ms if m["records"] == 0]
        if empty:
            unknown = ms[0].get("unknown_difficulty_in_input", 0)
            raise ValueError(f"{grid} subsets {empty} are empty ({ms[0]['input_records']} pool records, {unknown} "
                             "without a difficulty); give the pool difficulties (curation's difficulty source, or "
                             "pool.rescore: a trained scorer) or change the bands")
    retrained: set[str] = set()
    for i, c in enumerate(cells, 1):
        if cell_done(cfg, c):
            _log(f"cell {i}/{len(cells)} {c.label}: done before, skipped")
            continue
        _log(f"cell {i}/{len(cells)} {c.label}: training {cfg.recipe} on {c.subset}")
        m = train_cell(cfg, c)
        retrained.add(c.label)
        _log(f"cell {c.label}: {m.get('steps')} steps, loss {m.get('first_loss')} -> {m.get('last_loss')}")
    if train_only:
        return {"cells": [c.label for c in cells], "trained_now": sorted(retrained)}
    results = run_eval(cfg, cells, pool, retrained)
    rep = write_outputs(cfg, cells, results)
    rep["seconds"] = round(time.time() - t0, 1)
    _log(f"wrote {cfg.out}/study.md, study.json, study.png in {rep['seconds']} s")
    return rep


def report_only(config, overrides=None) -> dict:
    """The table from whatever evaluation results are under ``OUT/eval`` (after cluster runs)."""
    cfg = load_config(config, overrides)
    cells = expand(cfg)
    results = collect_results(Path(cfg.out) / "eval")
    if not results:
        raise ValueError(f"{cfg.out}/eval holds no results yet; run the eval commands of `mmredstar study plan`")
    return write_outputs(cfg, cells, results)


def _q(x) -> str:
    if isinstance(x, list):
        x = "[" + ",".join(str(v) for v in x) + "]"
    return shlex.quote(f"{x}")


def plan_text(cfg: StudyConfig, config_path: str | None = None) -> str:
    """The expanded cells and the exact commands to run the study on a cluster."""
    cells = expand(cfg)
    sdir, ddir = _subset_dirs(cfg)
    if cfg.pool.builtin is not None:
        pool = str(Path(cfg.out) / "pool" / "curate" / "sft.jsonl")
        pool_note = "(built-in data: `mmredstar study run CONFIG --train-only` builds it here)"
    else:
        specs = cfg.pool.path if isinstance(cfg.pool.path, list) else [cfg.pool.path]
        sets = named_sets()
        pool = " ".join(input_name(s) if not isinstance(s, str) else
                        os.path.join(data_root(cfg.pool.root), sets[s]["path"]) if s in sets else s for s in specs)
        pool_note = ""
    lines = [f"# {cfg.description or 'study'}", f"# recipe {cfg.recipe}, base model {cfg.model or '(the recipe s)'}, "
             f"seed {cfg.seed}; {len(cells)} cells", "", "# cells"]
    lines.append(f"#   {'label':22s} {'subset':48s} output_dir")
    for c in cells:
        lines.append(f"#   {c.label:22s} {c.subset:48s} {c.output_dir}")
    lines += ["", f"# 1. subsets of the pool {pool_note}".rstrip()]
    if cfg.scale.enabled:
        lines.append(f"mmredstar data subset {pool} --out {sdir} --sizes "
                     f"{_q(','.join(str(s) for s in cfg.scale.sizes))} --seed {cfg.seed}")
    if cfg.difficulty.enabled:
        bands = ",".join(f"{b.name}={b.lo}-{b.hi}" for b in parse_bands(cfg.difficulty.bands))
        lines.append(f"mmredstar data subset {pool} --out {ddir} --bands {_q(bands)}"
                     + (f" --sizes {cfg.difficulty.size}" if cfg.difficulty.size is not None else "")
                     + f" --seed {cfg.seed}")
    lines += ["", "# 2. one training job per cell (any launcher that runs mmredstar.training)"]
    for c in cells:
        ov = " ".join(f"{k}={_q(v)}" for k, v in c.overrides.items())
        lines.append(f"{cfg.launch} {cfg.recipe} {ov}")
    lines += ["", "# 3. evaluation (rows: " + ", ".join(lab for lab, _ in eval_entries(cfg, cells)) + ")"]
    models = ",".join(f"{lab}={m}" for lab, m in eval_entries(cfg, cells))
    common = (f" --backend {cfg.eval.backend}"
              + "".join(f" --backend-opt {_q(f'{k}={v}')}" for k, v in cfg.eval.backend_options_for().items())
              + (f" --n {cfg.eval.n}" if cfg.eval.n else "") + (f" --limit {cfg.eval.limit}" if cfg.eval.limit else "")
              + "".join(f" --set {_q(f'{k}={v}')}" for k, v in cfg.eval.overrides.items())
              + f" --out {Path(cfg.out) / 'eval'}")
    for b in cfg.eval.benches:
        if isinstance(b, dict):
            lines.append(f"# {b['name']}: an inline spec; `mmredstar study run CONFIG` evaluates it")
            continue
        d = cfg.eval.data.get(Path(str(b)).stem)
        lines.append(f"mmredstar eval run --model {_q(models)} --bench {_q(b)}" + (f" --data {_q(d)}" if d else "")
                     + common)
    if cfg.eval.builtin_test is not None:
        lines.append("# arith_heldout: the built-in held-out set; `mmredstar study run CONFIG` evaluates it")
    lines += ["", "# 4. the table (study.md / study.json / study.png)",
              f"mmredstar study report {config_path or 'CONFIG.yaml'}"]
    return "\n".join(lines)
