"""rStar-Math: tree search over code-augmented steps, tree files, and training data selected from them.

Floor 3 (uses ``generate``, ``verify``, ``synth``, ``io``; ``modeling.ppm`` lazily for PPM priors).

- ``steps``: what a step's code is, sandboxed execution of a path's code, terminal verdicts.
- ``mcts``: the search (``mmredstar mcts CONFIG --out DIR``) writing one tree per problem to ``trees.jsonl``.
- ``select``: SFT trajectories (top by mean step Q among correct ones) and per-level PPM preference pairs.
"""
