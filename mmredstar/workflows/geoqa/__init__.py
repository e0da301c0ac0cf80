"""The GeoQA pipeline: one config drives prepare -> curate -> SFT -> DPO / RL (and their control) -> eval for an
InternVL-style model.

    mmredstar geoqa run configs/geoqa/demo.yaml                    # every stage, skipping finished ones
    mmredstar geoqa prepare|curate|sft|dpo|rl|sft_continued|eval CONFIG.yaml   # one stage (its inputs must be ready)
    mmredstar geoqa run CONFIG.yaml --out runs/x --set sft.overrides.train.max_steps=20

Stages (each writes under ``OUT/<stage>/`` and ends by writing ``OUT/<stage>/stage.json``):

- ``prepare``: GeoQA-format data -> samples. Either a generator (``prepare.generate``, e.g. the synthetic
  polygons in GeoQA's LLM-era JSONL format) or your files (``prepare.src``: the original ``*.pk`` release,
  GeoQA+ JSON, or LLM-era JSONL), converted through the ``geoqa`` data card; the held-out split is
  ``prepare.test_src`` or ``prepare.held_out`` items split off ``src`` by a seeded hash. With
  ``prepare.template`` the evaluation spec's prompt template is applied to every sample, so training sees
  the prompt evaluation sends. Writes ``train.jsonl`` and ``test.jsonl``.
- ``curate``: the curation pipeline (``mmredstar.curate``) on ``train.jsonl`` with the ``curate:`` section
  (any curation config key): teacher samples, verification, ``sft.jsonl`` / ``dpo.jsonl``.
- ``sft`` / ``dpo``: training recipes (``mmredstar.training``) with dotted ``overrides``; the pipeline wires
  ``model.name`` (the base model for SFT, the SFT output for DPO), ``data.train`` and ``output_dir``.
- ``rl`` (off unless ``rl.enabled``): an RL recipe (GRPO by default) from the SFT model on the curated RL
  prompts (``curate/rl.jsonl``, the rule reward).
- ``sft_continued`` (off unless enabled): the honest control for the stages after SFT, SFT continued from the
  SFT model with the SFT stage's recipe and data settings, trained like the DPO stage (its ``train.*``
  overrides: steps, batch size, learning rate, schedule), on the DPO pairs' prompts with their chosen
  (verified) responses: only the loss differs from DPO's.
- ``eval``: the evaluation spec (``eval.bench``, default ``geoqa``) on ``test.jsonl`` for each checkpoint
  (``base`` = the untrained model, ``sft``, ``dpo``, ``rl``, ``sft_continued``), and for ``eval.blank_images``
  checkpoints again with every image blanked. Writes ``OUT/eval/report.{json,md,png}`` and the summary
  ``OUT/report.json``: accuracy, item count, binomial standard error and 95% Wilson interval per checkpoint;
  ``margins``: trained minus untrained and minus blank images, and each stage after SFT minus the control
  (``dpo_vs_sft_continued``, ``rl_vs_sft_continued``: ``points`` and ``se`` in percentage points, the SE
  paired over the same items).

A stage is finished when its ``stage.json`` holds the hash of its config section and of the stages it
reads from, and its outputs exist; ``run`` skips finished stages. Changing a stage's config changes its
hash, so that stage and every stage after it run again. ``--force STAGE`` reruns one stage regardless.
"""


from .cli import geoqa
from .config import (
    PIPELINE_VERSION,
    STAGES,
    GenerateConfig,
    GeoQAConfig,
    GeoQAEval,
    PipelineError,
    PrepareConfig,
    TrainStage,
    curate_config,
    flatten,
    load_config,
)
from .stages import (
    RUNNERS,
    digest,
    run_all,
    run_curate,
    run_eval,
    run_prepare,
    run_stage,
    run_train,
    stage_hash,
    stage_state,
    summary_table,
)

__all__ = ["PIPELINE_VERSION", "STAGES", "GeoQAEval", "GenerateConfig", "GeoQAConfig", "PipelineError", "PrepareConfig",
           "TrainStage", "curate_config", "flatten", "load_config", "RUNNERS", "digest", "run_all", "run_curate",
           "run_eval", "run_prepare", "run_stage", "run_train", "stage_hash", "stage_state", "summary_table", "geoqa"]
