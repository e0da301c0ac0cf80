"""Curation over many machines: ``--shard i/N`` runs, then ``curate merge``.

    # N jobs (a Slurm array, or N shells each with its own vllm serve): shard i of N, 0-based
    mmredstar curate CONFIG --shard 0/4      # -> OUT/shards/shard-0-of-4/
    ...
    mmredstar curate CONFIG --shard 3/4
    mmredstar curate merge CONFIG            # -> OUT/{sft,dpo,rl,rejected,decontaminated}.jsonl, report

How: every shard reads the same input stream (decontamination and ``limit`` included) and cuts it into
the same work units as one run would; shard ``i`` runs the units whose index is ``i`` modulo ``N``
through the teacher, filters and verifier, into its own directory (its own outputs and report, for a
look, and its ``units/`` cache). A shard resumes like any run. ``merge`` copies every shard's finished
units into ``OUT/units/`` and runs the ordinary pipeline over them with a teacher that never queries
anything: all units are found, so it writes the very files one run would have written (byte for
byte), in input order, with one report. A unit no shard finished is an error naming the shard to
rerun; nothing is generated at merge time.
"""

from __future__ import annotations

import dataclasses
import filecmp
import json
import os
import re
import shutil
from pathlib import Path

import click

from ..clibase import Command
from ..generate import Teacher, TeacherError, build_teacher
from .config import CurateConfig

SHARD_FILE = "shard.json"


def parse_shard(spec: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N`` (0-based, as Slurm's ``SLURM_ARRAY_TASK_ID``).

    >>> parse_shard("2/8")
    (2, 8)
    """
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(spec))
    if not m:
        raise ValueError(f"--shard {spec!r}: expected i/N, e.g. 0/4 (0-based shard index / number of shards)")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {spec!r}: need 0 <= i < N (shards are numbered 0 .. N-1)")
    return i, n


def shard_dir(out: str | os.PathLike, i: int, n: int) -> Path:
    return Path(out) / "shards" / f"shard-{i}-of-{n}"


def run_shard(cfg: CurateConfig, i: int, n: int, *, fresh: bool = False, progress: bool | None = None):
    """Run shard ``i`` of ``n`` of ``cfg`` into ``shard_dir(cfg.out, i, n)``; returns its ``CurateResult``."""
    from .pipeline import Pipeline

    d = shard_dir(cfg.out, i, n)
    sub = dataclasses.replace(cfg, out=str(d))
    pipe = Pipeline(sub, progress=progress)
    pipe.unit_filter = lambda index: index % n == i
    result = pipe.run(fresh=fresh)
    (d / SHARD_FILE).write_text(json.dumps({"shard": i, "of": n, "unit_size": cfg.unit_size,
                                            "units": pipe.stats["units"]}, indent=2) + "\n", encoding="utf-8")
    return result


class _FromShards(Teacher):
    """Stands in for the configured teacher at merge time: same fingerprint (so unit keys match), never
    generates."""

    def __init__(self, real: Teacher, n: int):
        super().__init__(real.config)
        self.kind, self.VOLATILE, self._real, self._n = real.kind, real.VOLATILE, real, n

    def fingerprint(self) -> dict:
        return self._real.fingerprint()

    def generate(self, samples, n, params):
        ids = ", ".join(s.id for s in samples[:3])
        raise TeacherError(f"curate merge: a work unit (prompts {ids}, ...) is in none of the {self._n} shards: "
                           "a shard did not finish (or ran another config). Rerun the shards (each resumes), "
                           "then merge again.")


def find_shards(out: str | os.PathLike) -> tuple[int, list[Path]]:
    """``(N, [shard dirs 0..N-1])`` under ``OUT/shards``; raises naming what is missing."""
    root = Path(out) / "shards"
    found: dict[int, dict[int, Path]] = {}
    for p in sorted(root.glob("shard-*-of-*")) if root.is_dir() else []:
        m = re.fullmatch(r"shard-(\d+)-of-(\d+)", p.name)
        if m:
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = p
    if not found:
        raise ValueError(f"{root}: no shard directories (run `mmredstar curate CONFIG --shard i/N` first)")
    if len(found) > 1:
        raise ValueError(f"{root}: shards of several splits ({sorted(found)} shards); keep one")
    (n, dirs), = found.items()
    missing = [i for i in range(n) if i not in dirs or not (dirs[i] / SHARD_FILE).exists()]
    if missing:
        raise ValueError(f"{root}: shard(s) {missing} of {n} missing or unfinished; run "
                         + "; ".join(f"mmredstar curate CONFIG --shard {i}/{n}" for i in missing))
    return n, [dirs[i] for i in range(n)]


def _gather_units(shards: list[Path], out: Path) -> int:
    copied = 0
    for d in shards:
        for f in sorted((d / "units").glob("*/*.jsonl")):
            dst = out / "units" / f.parent.name / f.name
            if dst.exists():
                if not filecmp.cmp(f, dst, shallow=False):
                    raise ValueError(f"{dst} differs from {f}: the same unit key with other contents")
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copyfile(f, tmp)
            os.replace(tmp, dst)
            copied += 1
    return copied


def merge(cfg: CurateConfig, *, progress: bool | None = None):
    """Join the shards of ``cfg`` (under ``OUT/shards``) into ``OUT`` as one run; returns its ``CurateResult``."""
    from .pipeline import Pipeline

    n, shards = find_shards(cfg.out)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _gather_units(shards, out)
    teacher = _FromShards(build_teacher(cfg.teacher), n)
    return Pipeline(cfg, teacher=teacher, progress=progress).run()


class MergeDispatch:
    """Mixed into the ``curate`` command: ``mmredstar curate merge ...`` dispatches to :func:`merge_cmd`."""

    def make_context(self, info_name, args, parent=None, **extra):
        if args and args[0] == "merge":
            return merge_cmd.make_context("merge", list(args[1:]), parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


@click.command("merge", cls=Command)
@click.argument("config")
@click.option("--out", default=None, help="Output directory (overrides 'out'; the shards are under OUT/shards).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config key (as for the shards).")
@click.option("--progress/--no-progress", default=None, help="Show the progress bar.")
def merge_cmd(config, out, sets, progress):
    """Join the shards of CONFIG (OUT/shards/shard-i-of-N) into OUT: the files one run would have written."""
    from .config import load_config

    overrides = list(sets) + ([f"out={out}"] if out is not None else [])
    result = merge(load_config(config, overrides), progress=progress)
    c = result.report["counts"]
    click.echo(f"{result.out}: merged; {c['prompts']} prompts, {c['responses']} responses -> {c['sft']} SFT, "
               f"{c['dpo_pairs']} DPO pairs, {c['rl_prompts']} RL prompts, {c['rejected']} rejected")
