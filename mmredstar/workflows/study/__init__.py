"""Data-composition studies as a grid: the paper's data-scale (Table 1) and difficulty (Table 2) experiments.

    mmredstar study plan configs/study/redstar_table1_table2.yaml    # the cells and the exact cluster commands
    mmredstar study run configs/study/tiny.yaml                      # every stage on CPU (~20 minutes on 2 cores)
    mmredstar study run CONFIG.yaml --only scale                     # one grid; finished cells are skipped
    mmredstar study report CONFIG.yaml                               # rebuild the table from finished evals

Python::

    from mmredstar.workflows.study import run, load_config, expand
    report = run("configs/study/tiny.yaml", ["out=runs/s"])          # -> the study.json content

One config names a base model, a training recipe, the data pool (a curated SFT set, or built-in data) and
the grids. ``expand`` turns it into cells: ``scale`` (one per size of the nested ladder, e.g. 4k, 8k, 16k,
32k, all) and ``difficulty`` (one per band, e.g. levels 3 / 4-6 / 7-9, optionally cut to one size). Each
cell is an ordinary training run (``mmredstar.training.run(recipe, overrides)`` with ``data.train`` = the
cell's subset and its own ``output_dir``) and is evaluated with the evaluation runner on the config's
benchmarks. ``run`` goes through the stages, each resumable:

1. pool: ``pool.path`` (files, globs or a named set of ``train/_sets.yaml``), or built-in data
   (``pool.builtin``: generated arithmetic problems by level -> curation with the scripted teacher ->
   ``sft.jsonl``, optionally with a trained difficulty scorer as the curation difficulty source);
   ``pool.rescore`` re-scores the pool's difficulty with a trained scorer first.
2. subsets (``mmredstar.data.subset``): ``OUT/subsets/scale/<size>.jsonl`` and
   ``OUT/subsets/difficulty/<band>[_<size>].jsonl``, each with its manifest.
3. train: ``OUT/cells/<grid>/<cell>/`` (a cell whose ``cell.json`` matches its recipe, overrides and subset
   hash is skipped; a killed cell resumes from its last checkpoint).
4. eval: ``OUT/eval/<grid>-<cell>/<bench>/`` (+ ``base``, the untrained model), resumable per item.
5. the table: ``OUT/study.json``, ``OUT/study.md`` (rows = cells, columns = benchmarks + AVG, pass@1 %)
   and ``OUT/study.png`` (accuracy vs data scale; accuracy per difficulty band).

On a cluster, ``plan`` prints the same steps as commands: the subset builds, one
``accelerate launch ... -m mmredstar.training RECIPE data.train=[...] output_dir=...`` per cell, the eval
runs, then ``mmredstar study report`` for the table.
"""


from .cli import study
from .config import (
    STUDY_VERSION,
    BuiltinPool,
    DifficultyGrid,
    PoolConfig,
    ScaleGrid,
    StudyConfig,
    StudyEval,
    load_config,
)
from .stages import (
    Cell,
    bench_specs,
    build_grid_subsets,
    build_report,
    builtin_test_set,
    cell_done,
    cell_fingerprint,
    eval_entries,
    expand,
    plan_text,
    prepare_pool,
    render_markdown,
    report_only,
    run,
    run_eval,
    train_cell,
    write_outputs,
)

__all__ = ["STUDY_VERSION", "BuiltinPool", "DifficultyGrid", "StudyEval", "PoolConfig", "ScaleGrid", "StudyConfig",
           "load_config", "Cell", "bench_specs", "build_grid_subsets", "build_report", "builtin_test_set", "cell_done",
           "cell_fingerprint", "eval_entries", "expand", "plan_text", "prepare_pool", "render_markdown", "report_only",
           "run", "run_eval", "train_cell", "write_outputs", "study"]
