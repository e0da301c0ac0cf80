"""The trained scorer as a curation difficulty source (``difficulty: {source: trained, params: {model: PATH}}``).

    # configs/curate/*.yaml
    difficulty:
      source: trained                       # = mmredstar.difficulty.source:TrainedSource
      params: {model: runs/difficulty/tiny, batch_size: 64}
      range: [7, 9]                         # then keep the hard prompts, as the paper's 4k set

Scores are cached per work unit by the curation pipeline (``cached = True``; the fingerprint holds the
hashes of the scorer's weights and training config, so a retrained scorer re-scores). Each prompt gets
``meta.difficulty_source = "trained"`` and the head's extras (``difficulty_expected``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from mmredstar.curate.difficulty import DifficultySource


@dataclass
class TrainedConfig:
    model: str = ""
    """The scorer directory written by ``mmredstar difficulty train`` (holds ``scorer.json``)."""
    batch_size: int = 32
    """Problems per forward pass."""
    device: str | None = None
    """``cuda`` / ``cpu``; ``None``: a GPU when there is one."""


class TrainedSource(DifficultySource):
    """Difficulty from a trained scorer (``mmredstar.difficulty``)."""

    name = "trained"
    cached = True
    Config = TrainedConfig

    def __init__(self, config: TrainedConfig):
        super().__init__(config)
        self._scorer = None

    def check(self):
        import os

        from .model import SCORER_FILE

        if not self.config.model:
            raise ValueError("trained: params.model is required: the directory `mmredstar difficulty train` wrote")
        if not os.path.exists(os.path.join(self.config.model, SCORER_FILE)):
            raise ValueError(f"trained: {self.config.model} holds no trained scorer ({SCORER_FILE}); train one with "
                             "`mmredstar difficulty train CONFIG.yaml`")

    def scorer(self):
        if self._scorer is None:
            from .model import load_scorer

            self.check()
            self._scorer = load_scorer(self.config.model, device=self.config.device)
        return self._scorer

    def fingerprint(self) -> dict:
        import json
        import os

        from .model import SCORER_FILE

        self.check()
        with open(os.path.join(self.config.model, SCORER_FILE), encoding="utf-8") as f:
            info = json.load(f)
        return {"source": self.name, "weights": info.get("weights_sha256"), "config": info.get("config_sha256"),
                "head": info.get("head")}

    def score(self, samples):
        res = self.scorer().score_samples(samples, batch_size=self.config.batch_size)
        self.count("scored", len(res))
        return [(d, {**meta, "difficulty_source": "trained"}) for d, meta in res]
