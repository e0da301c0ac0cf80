"""Experiment trackers for the stages that are not a Trainer: curation and evaluation report their counters to
the trackers a training run already supports (``report_to``: ``tensorboard``, ``wandb``), the way
transformers' own callbacks do, so the three stages land side by side:

- ``tensorboard``: event files under ``OUT/runs/<date>_<host>/`` (transformers' ``default_logdir``; the
  ``TENSORBOARD_LOGGING_DIR`` environment variable wins, as for training), written with the same
  ``SummaryWriter`` (torch's, else tensorboardX);
- ``wandb``: one W&B run in the project ``$WANDB_PROJECT`` (default ``huggingface``, as for training), with
  ``WANDB_MODE=offline`` etc. honoured by wandb itself.

Python::

    from mmredstar.trackers import report_scalars
    report_scalars(["tensorboard"], "runs/curate", {"curate/counts/sft": 12}, run_name="curate")
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)

TRACKERS: dict[str, tuple[tuple[str, ...], str]] = {
    # name -> (importable modules, any one suffices; how to install)
    "tensorboard": (("tensorboard", "tensorboardX"), "pip install tensorboard"),
    "wandb": (("wandb",), "pip install wandb"),
}


def check_report_to(value, key: str = "report_to") -> list[str]:
    """The tracker names of a ``report_to`` value (a list, or ``none`` / ``all`` / ``a,b``); a ``ValueError``
    names an unknown tracker or a missing package with its install command.

    >>> check_report_to([]), check_report_to("none")
    ([], [])
    """
    if value is None:
        return []
    names = [x.strip() for x in value.split(",")] if isinstance(value, str) else [str(x).strip() for x in value]
    names = [n for n in names if n and n != "none"]
    if "all" in names:
        names = [n for n, (mods, _) in TRACKERS.items() if _installed(mods)]
    out: list[str] = []
    for n in names:
        if n not in TRACKERS:
            raise ValueError(f"key '{key}': unknown tracker {n!r}; known: {sorted(TRACKERS)} (or none / all)")
        mods, install = TRACKERS[n]
        if not _installed(mods):
            raise ValueError(f"key '{key}': {n} is not installed here; {install}")
        if n not in out:
            out.append(n)
    return out


def _installed(mods) -> bool:
    return any(importlib.util.find_spec(m) is not None for m in mods)


def flatten(d: Mapping, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of nested mappings as ``a/b/c`` keys (lists, strings and None left out).

    >>> flatten({"counts": {"sft": 3, "dpo": 1}, "pass_rate": 0.5, "name": "x", "on": True})
    {'counts/sft': 3.0, 'counts/dpo': 1.0, 'pass_rate': 0.5}
    """
    out: dict[str, float] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, name + "/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[name] = float(v)
    return out


def tensorboard_dir(out: str | os.PathLike) -> str:
    """Where the event files go: ``$TENSORBOARD_LOGGING_DIR`` or ``OUT/runs/<date>_<host>`` (as training)."""
    env = os.environ.get("TENSORBOARD_LOGGING_DIR")
    if env:
        return os.path.expanduser(env)
    from transformers.integrations.integration_utils import default_logdir

    return os.path.join(os.fspath(out), default_logdir())


def report_scalars(report_to, out: str | os.PathLike, scalars: Mapping[str, float], *, run_name: str,
                   step: int = 0, config: Mapping | None = None) -> dict[str, str]:
    """Send ``scalars`` (``{"curate/counts/sft": 12, ...}``) at ``step`` to each tracker of ``report_to``;
    returns ``{tracker: where}`` (the event-file directory, the W&B run's directory)."""
    where: dict[str, str] = {}
    for name in check_report_to(report_to):
        if name == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                from tensorboardX import SummaryWriter

            logdir = tensorboard_dir(out)
            w = SummaryWriter(log_dir=logdir)
            try:
                for k, v in scalars.items():
                    w.add_scalar(k, v, step)
            finally:
                w.close()
            where[name] = logdir
        elif name == "wandb":
            import wandb

            os.makedirs(out, exist_ok=True)
            run = wandb.init(project=os.getenv("WANDB_PROJECT", "huggingface"), name=run_name, dir=os.fspath(out),
                             config=dict(config or {}), reinit=True)
            try:
                run.log(dict(scalars), step=step)
            finally:
                run.finish()
            where[name] = str(run.dir)
        log.info("%s: %d value(s) reported to %s (%s)", run_name, len(scalars), name, where[name])
    return where


__all__ = ["TRACKERS", "check_report_to", "flatten", "report_scalars", "tensorboard_dir"]
