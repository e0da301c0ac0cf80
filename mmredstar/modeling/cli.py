"""``mmredstar models``: list and inspect model presets.

    .venv/bin/mmredstar models list
    .venv/bin/mmredstar models info internvl2_8b            # numbers, parameter count (meta device, no weights)
    .venv/bin/mmredstar models info tiny_vlm --build        # also build it and run one forward pass on a built-in image
"""

from __future__ import annotations

import json
import os

import click

from mmredstar.modeling.groups import parts
from mmredstar.modeling.presets import list_presets, load_preset, preset_summary
from mmredstar.schema import ImageRef, Sample

from ..clibase import Group


@click.group("models", cls=Group)
def models():
    """List and inspect model presets (models/*.yaml)."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_cmd(as_json: bool):
    """Every preset with its family, init and one-line description."""
    rows = []
    for name in list_presets():
        p = load_preset(name)
        rows.append({"name": name, "family": p.family, "init": p.init, "context": p.context_length,
                     "description": p.description})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['name']:32s} {r['family']:4s} {r['init']:10s} ctx {str(r['context']):>6s}  {r['description']}")


def count_parameters(preset) -> dict:
    """Parameter counts per part, built on the meta device (no memory, no weights)."""
    from mmredstar.modeling.loading import build_model

    model, _ = build_model(preset, meta=True)
    counts = {part: sum(p.numel() for _, p in ps) for part, ps in parts(model).items()}
    counts["total"] = sum(counts.values())
    return counts


def builtin_image():
    """A 96x64 RGB image of a filled red pentagon on white (for ``--build``)."""
    import math

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (96, 64), "white")
    pts = [(48 + 28 * math.cos(2 * math.pi * k / 5 - math.pi / 2), 34 + 28 * math.sin(2 * math.pi * k / 5 - math.pi / 2))
           for k in range(5)]
    ImageDraw.Draw(img).polygon(pts, fill=(200, 30, 30))
    return img


def build_and_run(name: str) -> dict:
    """Instantiate a preset and run one forward pass (an image sample for VLMs)."""
    import time

    import torch

    from mmredstar.modeling.loading import load_model

    t0 = time.time()
    model, processor = load_model(name)
    built = time.time() - t0
    if processor.family == "vlm":
        sample = Sample.with_images("How many sides does the shape have?", [ImageRef.from_image(builtin_image())],
                                    "5", "numeric")
    else:
        sample = Sample.text("What is 2 + 3?", "5", "numeric")
    feat = processor.encode(sample, "The answer is 5.")
    batch = processor.collate([feat])
    t1 = time.time()
    with torch.no_grad():
        out = model(**batch)
    return {"build_s": round(built, 3), "forward_s": round(time.time() - t1, 3), "tokens": len(feat["input_ids"]),
            "tiles": int(sum(feat["num_tiles"])), "loss": round(float(out.loss), 4),
            "logits_shape": list(out.logits.shape)}


@models.command("info")
@click.argument("preset")
@click.option("--build", is_flag=True, help="Instantiate the preset (tiny or random-init ones) and run one forward pass.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info_cmd(preset: str, build: bool, as_json: bool):
    """Family, parameter count, context length, RoPE and image settings of PRESET."""
    p = load_preset(preset)
    problems = p.validate()
    d = preset_summary(p)
    d["parameters"] = count_parameters(p)
    d["valid"] = not problems
    if problems:
        d["problems"] = problems
    if build:
        if p.init != "random":
            raise click.ClickException(f"--build instantiates random-init presets only; {p.name} loads "
                                       f"{p.checkpoint} (use load_model for that)")
        d["build"] = build_and_run(preset)
    if as_json:
        click.echo(json.dumps(d, indent=2, default=str))
        return
    for k, v in d.items():
        if k == "parameters":
            v = ", ".join(f"{part} {n / 1e6:,.2f}M" for part, n in v.items())
        click.echo(f"{k:24s} {v}")
    if problems:
        raise SystemExit(1)


@models.command("import")
@click.argument("src")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Checkpoint directory to write.")
@click.option("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]), default="bfloat16", show_default=True,
              help="Weights dtype of the written checkpoint (bf16 halves the fp32 size).")
@click.option("--overwrite", is_flag=True, help="Replace OUT when it exists.")
def import_cmd(src: str, out: str, dtype: str, overwrite: bool):
    """Convert a GGUF checkpoint into a normal HF checkpoint directory.

    SRC is a .gguf file, a directory holding one, pkg:<python package>/<file>, or a preset whose
    checkpoint is one (e.g. smollm2_135m_instruct). OUT gets config.json, model.safetensors, the
    tokenizer with its chat template and generation_config.json: AutoModelForCausalLM, load_model,
    `transformers serve` and vLLM load it.
    """
    from mmredstar.modeling.importing import import_gguf, is_gguf
    from mmredstar.modeling.presets import is_preset, load_preset

    spec = src
    if not is_gguf(src) and not os.path.isdir(src) and is_preset(src):
        p = load_preset(src)
        if not is_gguf(p.checkpoint):
            raise click.ClickException(f"preset {p.name}: its checkpoint {p.checkpoint!r} is not a GGUF file; "
                                       "load it with load_model or `mmredstar models export`")
        spec = p.checkpoint
    path = import_gguf(spec, out, dtype=dtype, overwrite=overwrite)
    info = json.loads((path / "mmredstar_import.json").read_text())
    click.echo(f"wrote {path}: {info['architecture']}, {info['parameters'] / 1e6:.1f}M parameters, {dtype}")


@models.command("export")
@click.argument("ckpt")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Directory to write.")
@click.option("--overwrite", is_flag=True, help="Replace OUT when it exists.")
def export_cmd(ckpt: str, out: str, overwrite: bool):
    """Export CKPT (a saved run, preset or checkpoint) so other tools load it without mmredstar.

    VLMs with an InternViT-shaped tower: transformers' InternVL layout (AutoModelForImageTextToText,
    AutoProcessor, transformers serve, vLLM); other VLMs: our weights + modeling code with an auto_map
    (trust_remote_code=True); text models: a plain HF checkpoint.
    """
    from mmredstar.modeling.export import export_checkpoint

    info = export_checkpoint(ckpt, out, overwrite=overwrite)
    click.echo(f"wrote {out}: {info['architecture']} ({info['layout']}); load with {info['load']}")
