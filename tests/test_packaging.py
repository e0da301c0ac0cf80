"""Dependencies say what they mean: every declared package is imported by the code, DeepSpeed is an extra that
``scripts/setup.sh`` installs unless ``MMREDSTAR_NO_DEEPSPEED=1``, floors match the APIs used.

    .venv/bin/python -m pytest -q tests/test_packaging.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMPORT_NAME = {"pillow": "PIL", "pyyaml": "yaml", "math-verify": "math_verify"}


def project():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_dependency_is_imported_and_deepspeed_is_an_extra():
    p = project()
    names = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower(): d for d in p["dependencies"]}
    assert "deepspeed" not in names and p["optional-dependencies"]["deepspeed"] == ["deepspeed>=0.17"]
    code = "\n".join(f.read_text(encoding="utf-8") for f in (ROOT / "mmredstar").rglob("*.py"))
    unused = [n for n in names if not re.search(rf"^\s*(import|from)\s+{re.escape(IMPORT_NAME.get(n, n))}\b",
                                                code, re.M)]
    assert unused == [], f"declared but never imported: {unused}"
    # the floor of math-verify is the version with parse(..., parsing_timeout=None), which verify/math.py passes
    assert "math-verify>=0.8" in names["math-verify"] and "parsing_timeout=None" in code


def test_pixel_shuffle_with_einops_matches_internvl():
    import torch

    from mmredstar.modeling.vlm import pixel_shuffle

    def internvl(x, scale=0.5):  # InternVL's reference implementation (ps_version v2)
        n, w, h, c = x.size()
        x = x.view(n, w, int(h * scale), int(c / scale)).permute(0, 2, 1, 3).contiguous()
        x = x.view(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
        return x.permute(0, 2, 1, 3).contiguous()

    x = torch.randn(3, 8, 8, 12)
    assert torch.equal(pixel_shuffle(x, 0.5), internvl(x))
    with pytest.raises(ValueError, match="1/integer"):
        pixel_shuffle(x, 0.3)


SHIM = """#!/usr/bin/env bash
# stands in for .venv/bin/python: records each call; pip does nothing; deepspeed is 'not installed'
echo "$*" >> "$SHIM_LOG"
case "$1" in
  -m) exit 0 ;;
  -) cat >/dev/null; echo "torch==2.14.1"; echo "torchvision==0.29.1"; exit 0 ;;
  -c) case "$2" in *"find_spec('deepspeed')"*) exit 1 ;; *re.search*) exec python3 -c "$2" ;; *) exit 0 ;; esac ;;
esac
"""


@pytest.mark.parametrize("knob", ["", "1"])
def test_setup_installs_deepspeed_unless_the_knob_is_set(tmp_path, knob):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/setup.sh", tmp_path / "scripts")
    py = tmp_path / ".venv/bin/python"
    py.parent.mkdir(parents=True)
    py.write_text(SHIM)
    py.chmod(0o755)
    log = tmp_path / "calls.log"
    env = {**os.environ, "SHIM_LOG": str(log), "MMREDSTAR_NO_DEEPSPEED": knob}
    r = subprocess.run(["bash", str(tmp_path / "scripts/setup.sh")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    pip = [ln for ln in log.read_text().splitlines() if ln.startswith("-m pip")]
    ds = [ln for ln in pip if "deepspeed" in ln]
    if knob:
        assert ds == [] and "not installing deepspeed" in r.stderr
    else:
        assert len(ds) == 1 and "--no-build-isolation deepspeed>=0.17" in ds[0]
    assert any(ln.endswith("-e .[dev]") for ln in pip)  # the package itself: no deepspeed extra
