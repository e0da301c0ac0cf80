"""rStar-Math self-evolution as a workflow: round-0 policy, then per round MCTS -> select -> policy -> PPM; eval.

    mmredstar rstar run configs/rstar/tiny.yaml --out runs/rstar_tiny      # CPU, a few minutes
    mmredstar rstar run configs/rstar/qwen2_5_math_7b.yaml --out runs/rstar  # the paper's settings (GPUs)

``config``: the typed YAML config; ``stages``: the resumable stages and the final report; ``cli``: the command.
"""

from .config import RStarConfig, RStarError, load_config

__all__ = ["RStarConfig", "RStarError", "load_config"]
