"""Evaluation backends for code-augmented step policies: whole trajectories, and PPM-guided step-level beam search.

Both are teachers (``mmredstar.generate.Teacher``), so ``mmredstar eval run`` scores them like any backend;
both run each trajectory's code in the sandbox and end the response with ``The answer is \\boxed{...}`` (the
answer step's ``\\boxed{}``, else the program's last printed line), so the ordinary verifiers score it:

- ``code_steps``: the policy writes whole trajectories (``n`` per prompt; greedy at temperature 0, majority
  voting over ``n`` samples with ``maj@n``).
- ``ppm_search``: step-level beam search (rStar-Math): each live beam asks the policy for ``k`` candidate next
  steps (stop string ``<end_of_step>``), candidates whose code fails are dropped, the PPM scores the rest and
  the best ``beam`` partial trajectories go on; the answer is the best-scored finished trajectory's. With
  ``beam: 1`` it generates ``k`` candidates per step: the budget of ``k`` whole samples.

    mmredstar eval run --backend ppm_search --model runs/rstar/round2/policy \\
        --backend-opt ppm=runs/rstar/round2/ppm --backend-opt k=4 --bench arith_steps --data held_out.jsonl
    mmredstar eval run --backend code_steps --model runs/rstar/round2/policy --n 4 --set metrics=[maj@4] ...
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..generate import SamplingParams, Teacher, build_teacher, gen_record, sample_seed
from ..schema import Response, Sample
from ..search.steps import (
    STEP_END,
    candidate_steps,
    execute,
    is_terminal,
    last_output,
    score_trajectories,
    step_code,
    with_prefix,
)
from ..synth.steps import join_steps

log = logging.getLogger(__name__)


def _answer_line(steps: list[str], out: str) -> str:
    last = steps[-1] if steps else ""
    if "\\boxed{" in last:
        return ""
    return f"\nThe answer is \\boxed{{{last_output(out)}}}."


@dataclass
class CodeStepsConfig:
    model: str = "tiny_text"
    """The policy model (a preset or a saved directory) for the local backend."""
    policy: dict = field(default_factory=dict)
    """The policy as any teacher spec (``{kind: openai, ...}``); empty = ``{kind: transformers, model: MODEL}``."""
    batch_size: int = 32
    """Sequences generated together (local policy)."""
    exec_timeout: float = 2.0
    """Seconds each trajectory's code may run in the sandbox."""
    include_greedy: bool = False
    """When sampling (temperature > 0): the first of the ``n`` whole trajectories (``code_steps``) or of the
    ``k`` candidate steps per beam (``ppm_search``) is the policy's greedy one, the rest are sampled, so the
    budget stays ``n`` / ``k`` and the greedy answer is always among those voted on or scored."""


def _sample(policy: Teacher, prompts: list[Sample], n: list[int], params: SamplingParams,
            include_greedy: bool) -> list[list[Response]]:
    """``policy.generate``; with ``include_greedy`` (and temperature > 0) the first response of each prompt is
    generated at temperature 0 and the other ``n - 1`` sampled."""
    if not include_greedy or not params.temperature or not prompts:
        return policy.generate(prompts, n, params)
    import dataclasses

    first = policy.generate(prompts, [min(1, k) for k in n], dataclasses.replace(params, temperature=0.0))
    rest_idx = [i for i, k in enumerate(n) if k > 1]
    rest = policy.generate([prompts[i] for i in rest_idx], [n[i] - 1 for i in rest_idx], params) if rest_idx else []
    out = [list(rs) for rs in first]
    for i, rs in zip(rest_idx, rest, strict=True):
        out[i].extend(rs)
    return out


def _policy(cfg) -> Teacher:
    spec = dict(cfg.policy) if cfg.policy else {"kind": "transformers", "model": cfg.model, "batch_size": cfg.batch_size}
    return build_teacher(spec)


class CodeStepsTeacher(Teacher):
    """Whole trajectories from the policy; their code is run and the answer written as ``\\boxed{}``."""

    kind = "code_steps"
    Config = CodeStepsConfig
    VOLATILE = ("batch_size",)

    def __init__(self, config):
        super().__init__(config)
        self.policy = _policy(config)

    @property
    def model_name(self):
        return self.config.model

    def generate(self, samples: list[Sample], n: list[int], params: SamplingParams) -> list[list[Response]]:
        outs = _sample(self.policy, samples, n, params, self.config.include_greedy)
        items = [(s, r.text or "") for s, rs in zip(samples, outs, strict=True) for r in rs]
        progs = ["\n".join(c for c in (step_code(x) for x in t.split(STEP_END)) if c) for _, t in items]
        runs = iter(execute(progs, per_test=self.config.exec_timeout))
        for rs in outs:
            for r in rs:
                ran = next(runs)
                steps = [x for x in (r.text or "").split(STEP_END) if x.strip()]
                if ran["status"] == "ok" and steps and is_terminal(steps[-1]):
                    r.text = (r.text or "") + _answer_line(steps, ran["out"])
                r.meta = {**r.meta, "exec_status": ran["status"]}
                self.count("responses")
        return outs

    def close(self) -> None:
        self.policy.close()


@dataclass
class PPMSearchConfig(CodeStepsConfig):
    ppm: str = ""
    """The PPM directory (``mmredstar.modeling.ppm``; trained with ``method: ppm``)."""
    k: int = 4
    """Candidate next steps per live beam and step."""
    beam: int = 1
    """Partial trajectories kept after each step."""
    max_depth: int = 8
    """Steps per trajectory at most."""
    step_max_tokens: int = 256
    """Maximum new tokens per step."""
    candidate_temperature: float | None = None
    """Sampling temperature of candidates; ``None``: the run's temperature, or 1.0 when that is 0 (greedy)."""
    ppm_batch_size: int = 32
    """Steps the PPM scores together."""


class PPMSearchTeacher(Teacher):
    """PPM-guided step-level beam search (see the module docstring); one response per requested sample."""

    kind = "ppm_search"
    Config = PPMSearchConfig
    VOLATILE = ("batch_size", "ppm_batch_size")

    def __init__(self, config, scorer=None):
        super().__init__(config)
        if not config.ppm and scorer is None:
            raise ValueError("ppm_search backend: set 'ppm' (a PPM directory), e.g. --backend-opt ppm=runs/x/ppm")
        self.policy = _policy(config)
        self._scorer = scorer

    @property
    def model_name(self):
        return self.config.model

    @property
    def scorer(self):
        if self._scorer is None:
            from ..modeling.ppm import PPMScorer

            self._scorer = PPMScorer(self.config.ppm, batch_size=self.config.ppm_batch_size)
        return self._scorer

    def search(self, samples: list[Sample], params: SamplingParams, tag: str = "0") -> list[dict]:
        """One beam search per sample: ``{"steps", "score", "out", "generated"}`` of the best finished path."""
        cfg = self.config
        temp = cfg.candidate_temperature if cfg.candidate_temperature is not None else (params.temperature or 1.0)
        beams: list[list[tuple[float, list[str], list[str]]]] = [[(0.0, [], [])] for _ in samples]
        finished: list[list[tuple[float, list[str], str]]] = [[] for _ in samples]
        generated = [0] * len(samples)
        for depth in range(cfg.max_depth):
            jobs = [(i, b) for i, bs in enumerate(beams) for b in bs]
            if not jobs:
                break
            prompts = [with_prefix(samples[i], steps, f"{tag}.{depth}.{j}") for j, (i, (_, steps, _)) in enumerate(jobs)]
            p = SamplingParams(temperature=temp, top_p=params.top_p, max_tokens=cfg.step_max_tokens,
                               seed=params.seed * 1009 + depth + 7 * int(tag), stop=[STEP_END], extra=dict(params.extra))
            outs = _sample(self.policy, prompts, [cfg.k] * len(jobs), p, cfg.include_greedy)
            cands = []
            for (i, (_, steps, codes)), rs in zip(jobs, outs, strict=True):
                generated[i] += len(rs)
                for text in candidate_steps(rs):
                    code = step_code(text)
                    cands.append((i, steps + [text], codes + ([code] if code else [])))
            runs = execute(["\n".join(c) for _, _, c in cands], per_test=cfg.exec_timeout)
            ok = [(c, r) for c, r in zip(cands, runs, strict=True) if r["status"] == "ok"]
            scores = self.scorer.score([(samples[i], steps) for (i, steps, _), _ in ok])
            nxt: list[list[tuple[float, list[str], list[str]]]] = [[] for _ in samples]
            for ((i, steps, codes), r), sc in zip(ok, scores, strict=True):
                if is_terminal(steps[-1]):
                    finished[i].append((sc, steps, r["out"]))
                else:
                    nxt[i].append((sc, steps, codes))
            for i in range(len(samples)):
                room = cfg.beam - len(finished[i])
                nxt[i].sort(key=lambda x: -x[0])
                beams[i] = nxt[i][: max(0, room)] if depth + 1 < cfg.max_depth else []
            self.count("search_steps")
        res = []
        for i in range(len(samples)):
            if finished[i]:
                sc, steps, out = max(finished[i], key=lambda x: x[0])
                res.append({"steps": steps, "score": sc, "out": out, "generated": generated[i]})
            else:
                res.append({"steps": [], "score": None, "out": "", "generated": generated[i]})
        return res

    def generate(self, samples: list[Sample], n: list[int], params: SamplingParams) -> list[list[Response]]:
        out: list[list[Response]] = [[] for _ in samples]
        for j in range(max(n) if n else 0):
            idx = [i for i, k in enumerate(n) if k > j]
            for i, r in zip(idx, self.search([samples[i] for i in idx], params, tag=str(j)), strict=True):
                text = join_steps(r["steps"]) + _answer_line(r["steps"], r["out"]) if r["steps"] else ""
                out[i].append(Response(text=text, finish_reason="stop" if r["steps"] else "length",
                                       gen={**gen_record(self.kind, self.config.model, n[i], j, params,
                                                         sample_seed(params.seed, samples[i].id, j)),
                                            "k": self.config.k, "beam": self.config.beam},
                                       meta={"ppm_score": r["score"], "generated_steps": r["generated"]}))
                self.count("responses")
        return out

    def close(self) -> None:
        self.policy.close()


__all__ = ["CodeStepsTeacher", "PPMSearchTeacher", "score_trajectories"]
