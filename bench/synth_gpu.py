"""Synthesis decode throughput on a GPU vs the memory-bandwidth bound of decoding, same run.

    python bench/synth_gpu.py                                   # 8B Llama geometry, random bf16 weights, CUDA, batch 32/64/128
    python bench/synth_gpu.py --smoke                           # tiny geometry on CPU (what CI/this machine can run)

Generation goes through the synthesize stage's own path: ``TransformersBackend.generate`` (length-
sorted, left-padded batches, sampling at temperature 0.7) on rendered German prompts. End-of-sequence
is disabled so every sequence decodes exactly ``--new-tokens`` tokens.

The bound: every decode step has to read all weights once, so a step takes at least
``weight bytes ÷ device bandwidth``, where the bandwidth is *measured* in the same run (a large
device-to-device tensor copy: bytes read + bytes written ÷ time). At batch B the bound is
``B ÷ step time`` tokens/s. The KV cache is read on top of that (it grows with batch × context), so
ratios above ~0.8 are not reachable at large batches; the ratio shows how far HF ``generate``
(no CUDA graphs, no paged attention) is from the hardware. Weights are random (no hub access on the
GPU machines); the tokenizer is a 32k byte-level BPE trained here on ../shared/data/german-prose.txt.gz.
"""

from __future__ import annotations

import argparse
import time

from random_llama import GEOMETRIES, build_tokenizer  # noqa: E402  (bench/ is on sys.path when run as a script)


def copy_bandwidth(torch, device: str, gib: float) -> float:
    """Bytes/s of a device-to-device copy (read + write), best of 5."""
    n = int(gib * 2**30) // 2
    src = torch.empty(n, dtype=torch.float16, device=device).normal_()
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(6):
        sync(torch, device)
        start = time.perf_counter()
        dst.copy_(src)
        sync(torch, device)
        best = min(best, time.perf_counter() - start)
    del src, dst
    return 2 * n * 2 / best


def sync(torch, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--geometry", choices=sorted(GEOMETRIES), default="8b")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--prompt-chars", type=int, default=1500, help="German source text per prompt (~400 tokens).")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--copy-gib", type=float, default=4.0)
    parser.add_argument("--smoke", action="store_true", help="Tiny geometry on CPU: batch 2/4, 8 new tokens, 2k vocab.")
    args = parser.parse_args()
    if args.smoke:
        args.geometry, args.batches, args.new_tokens, args.prompt_chars, args.vocab, args.copy_gib = "tiny", [2, 4], 8, 300, 2000, 0.25

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from kurate.annotators.backends.hf_transformers import TransformersBackend
    from kurate.annotators.contracts import BackendFailure
    from kurate.annotators.synthesis import load_synth_prompt

    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer, lines = build_tokenizer(args.vocab)
    hidden, layers, heads, kv_heads, intermediate = GEOMETRIES[args.geometry]
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv_heads, intermediate_size=intermediate, max_position_embeddings=8192,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    model.generation_config.eos_token_id = None  # decode exactly --new-tokens tokens
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bandwidth = copy_bandwidth(torch, device, args.copy_gib)
    step_bound = weight_bytes / bandwidth
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"device {device} ({name}), geometry {args.geometry}: {weight_bytes / 1e9:.2f} GB of weights ({dtype}), "
          f"measured copy bandwidth {bandwidth / 1e9:.0f} GB/s → ≥ {step_bound * 1e3:.2f} ms per decode step")

    spec = load_synth_prompt("wikipedia")
    text, i, prompts = "", 0, []
    for _ in range(max(args.batches)):
        text = ""
        while len(text) < args.prompt_chars:
            text += lines[i % len(lines)] + "\n"
            i += 1
        prompts.append(spec.fewshot(text))  # the BPE has no chat template: the few-shot style (base models)
    print(f"{'batch':>6} {'prompt tok':>10} {'new tok':>8} {'seconds':>8} {'tokens/s':>10} {'bound tok/s':>12} {'ratio':>6}")
    for batch in args.batches:
        backend = TransformersBackend.from_loaded(model, tokenizer, batch_size=batch)
        prompt_tokens = sum(len(tokenizer.encode(p)) for p in prompts[:batch]) // batch
        backend.generate(prompts[:batch], 1, 2, 0.7, 0)  # warm-up: kernels, allocator
        sync(torch, device)
        start = time.perf_counter()
        out = backend.generate(prompts[:batch], 1, args.new_tokens, 0.7, 0)
        sync(torch, device)
        seconds = time.perf_counter() - start
        produced = sum(len(tokenizer.encode(o.texts[0], add_special_tokens=False)) for o in out if not isinstance(o, BackendFailure))
        rate = batch * args.new_tokens / seconds
        bound = batch / step_bound
        print(f"{batch:>6} {prompt_tokens:>10} {args.new_tokens:>8} {seconds:>8.2f} {rate:>10.1f} {bound:>12.1f} {rate / bound:>6.2f}"
              f"   (re-tokenised output: {produced / batch:.0f} tok/seq)")
        if device == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
