"""Judge throughput on a GPU: the real annotate path in `logits` mode vs a bare forward pass.

    python bench/judge_gpu.py                       # 8B Llama geometry, random bf16 weights, CUDA
    python bench/judge_gpu.py --geometry tiny --docs 16 --batch 4   # smoke run on CPU

Both sides see the same model and the same batch shapes in the same run:

* **annotate path**: documents in a committed ``samples`` Parquet file → ``JudgeWorker.label_unit``
  (chat rendering, token truncation to 1,024 document tokens, length-sorted left-padded batches,
  one forward pass, softmax over the score tokens) → committed ``labels`` Parquet shard;
* **bare forward**: the same token batches straight into ``model(input_ids, logits_to_keep=1)``.

It prints docs/s for both and the ratio (target ≥ 0.75, the project's GPU target), plus `generate` mode with 3
samples. Weights are random (no hub access on the GPU machines); the tokenizer is a byte-level BPE
trained here on ../shared/data/german-prose.txt.gz, so the vocabulary is 32k instead of Llama-3's
128k — that only changes the one-position LM head, not the prefill being measured.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pyarrow as pa

from random_llama import GEOMETRIES, build_tokenizer  # noqa: E402  (bench/ is on sys.path when run as a script)


def documents(lines: list[str], n: int, chars: int) -> list[str]:
    docs, i = [], 0
    for _ in range(n):
        text = ""
        while len(text) < chars:
            text += lines[i % len(lines)] + "\n"
            i += 1
        docs.append(text)
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", choices=sorted(GEOMETRIES), default="8b")
    parser.add_argument("--docs", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--doc-tokens", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=32000)
    args = parser.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from kurate.annotators.annotate import JudgeWorker, SampleRef
    from kurate.annotators.backends.hf_transformers import TransformersBackend
    from kurate.annotators.judge import Judge, JudgeConfig
    from kurate.storage.schemas import SAMPLES
    from kurate.storage.shards import ShardStore, UnitKey

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer, lines = build_tokenizer(args.vocab)
    hidden, layers, heads, kv, inter = GEOMETRIES[args.geometry]
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv, intermediate_size=inter, max_position_embeddings=4096, tie_word_embeddings=False)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    model.config._attn_implementation = "sdpa"
    params = sum(p.numel() for p in model.parameters())
    print(f"device {device} ({torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}), geometry {args.geometry}: "
          f"{params / 1e9:.2f}B params, {args.docs} docs of ≥{args.doc_tokens} tokens, batch {args.batch}")

    docs = documents(lines, args.docs, chars=args.doc_tokens * 6)
    judge_config = JudgeConfig(name="bench", model="random", max_doc_tokens=args.doc_tokens, batch_size=args.batch)
    backend = TransformersBackend.from_loaded(model, tokenizer, args.batch)
    judge = Judge(judge_config, backend=backend)
    # Pin the judge's token truncation to the bench's document length, so both paths see equal shapes.
    with tempfile.TemporaryDirectory() as root:
        store = ShardStore(root)
        key = UnitKey("sample", "bench", "0")
        with store.open_unit(key, ["samples"]) as unit:
            unit.write("samples", pa.Table.from_pylist(
                [{"id": f"d{i}", "language": "de", "stratum": 0, "chars": len(t), "text": t} for i, t in enumerate(docs)], schema=SAMPLES))
        ref = SampleRef(key.name, store.url(unit.manifest.outputs[0].path), len(docs), (f"{key.name}#00000",))

        prompts = [backend.renderer.render(judge.prompt.criteria[0].messages(backend.renderer.truncate(t, args.doc_tokens)[0]),
                                           judge.prompt.criteria[0].answer_prefix) for t in docs]
        ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        length = max(len(i) for i in ids)
        print(f"prompt length {length} tokens (document {args.doc_tokens} + instructions)")

        def bare() -> float:
            batch = torch.full((args.batch, length), tokenizer.pad_token_id, device=device)
            started = time.perf_counter()
            with torch.inference_mode():
                for start in range(0, len(docs), args.batch):
                    model(batch, logits_to_keep=1)
            if device == "cuda":
                torch.cuda.synchronize()
            return len(docs) / (time.perf_counter() - started)

        def annotate_path() -> float:
            worker = JudgeWorker(judge_config, loaded=judge)
            started = time.perf_counter()
            result = worker.label_unit(root, ref, ref.chunks[0], docs_per_unit=len(docs))
            if device == "cuda":
                torch.cuda.synchronize()
            assert result["docs"] == len(docs) and result["valid"] == len(docs), result
            store.fs.rm(f"{root}/_manifests/annotate-bench", recursive=True)  # so the next repetition labels again
            return len(docs) / (time.perf_counter() - started)

        bare()  # warm-up: kernels, allocator
        forward_rate, path_rate = bare(), annotate_path()
        print(f"bare forward pass      {forward_rate:8.2f} docs/s")
        print(f"annotate (logits mode) {path_rate:8.2f} docs/s   ratio {path_rate / forward_rate:.2f} (target ≥ 0.75)")

        gen_config = judge_config.model_copy(update={"mode": "generate", "samples": 3, "max_new_tokens": 64, "temperature": 0.7})
        gen = Judge(gen_config, backend=backend)
        subset = docs[: max(args.batch, len(docs) // 8)]
        started = time.perf_counter()
        gen.label([{"id": str(i), "language": "de", "text": t} for i, t in enumerate(subset)])
        if device == "cuda":
            torch.cuda.synchronize()
        print(f"generate mode, 3 samples × 64 new tokens: {len(subset) / (time.perf_counter() - started):.2f} docs/s")


if __name__ == "__main__":
    main()
