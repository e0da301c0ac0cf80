"""Workflows: the multi-stage jobs built from the stages below (each stage resumable, each with a thin CLI).

- ``geoqa``: the GeoQA pipeline (prepare -> curate -> SFT -> DPO -> eval) from one config; ``mmredstar geoqa``.
- ``demo``: the end-to-end demo, an ordinary GeoQA pipeline run on built-in data; ``mmredstar demo``.
- ``study``: the paper's data-scale and difficulty studies (Tables 1-2) as a grid; ``mmredstar study``.

``geoqa`` and ``study`` are packages: ``config.py`` (the dataclass tree and its checks), ``stages.py`` (the stages,
their resume markers, ``run_all`` / ``run``) and ``cli.py`` (the commands); both evaluate through the shared
``mmredstar.evaluation.config.EvalRunConfig`` keys.
"""
