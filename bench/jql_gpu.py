"""JQL scoring throughput on a GPU: the real embed + score path vs a bare encoder forward pass.

    python bench/jql_gpu.py                                   # XLM-R-base geometry, random bf16 weights
    python bench/jql_gpu.py --geometry tiny --docs 64         # smoke run on CPU

An encoder with XLM-R-base geometry (12 layers, 768 hidden, 12 heads, 3072 FF, 250k vocab; 278M
parameters — the 284M figure of the project's GPU target includes the pooler) gets random weights and the
multilingual-e5-small tokenizer (the same XLM-R 250k unigram vocabulary), saved as a
sentence-transformers folder. Both sides in the same run:

* **score path**: a committed ``curated`` Parquet shard of German prose documents (≥ 512 tokens)
  → ``embed_shard`` (tokenise, length-sorted batches, bf16 forward, mean pooling, normalise, float16
  Parquet commit) → ``score_shard`` with 6 JQL heads (Linear(768,1000) → ReLU → Linear(1000,1)) →
  committed ``head_scores``;
* **bare forward**: the same encoder on pre-tokenised (batch, 512) tensors.

Prints docs/s for both and the ratio (target ≥ 0.70 and ≥ 3,000 docs/s on an H100), plus the time
spent tokenising, so it is visible whether tokenisation is the bottleneck.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import pyarrow as pa

PROSE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "german-prose.txt.gz"
GEOMETRIES = {"xlmr-base": (768, 12, 12, 3072), "tiny": (64, 2, 2, 128)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geometry", choices=sorted(GEOMETRIES), default="xlmr-base")
    parser.add_argument("--docs", type=int, default=8192)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--heads", type=int, default=6)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer, models as st_models
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    from kurate.annotators.embedder import EmbedderConfig, resolve_embedder
    from kurate.annotators.heads import RegressionHead
    from kurate.annotators.jql import embed_shard, score_shard
    from kurate.annotators.head_store import save_annotator
    from kurate.storage.schemas import CURATED
    from kurate.storage.shards import ShardStore, UnitKey

    device = "cuda" if torch.cuda.is_available() else "cpu"
    hidden, layers, heads, ff = GEOMETRIES[args.geometry]
    tokenizer = AutoTokenizer.from_pretrained(resolve_embedder("embedded:multilingual-e5-small"))
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                              intermediate_size=ff, max_position_embeddings=args.tokens + 2, pad_token_id=tokenizer.pad_token_id)
    lines = gzip.open(PROSE, "rt").read().splitlines()
    docs, i = [], 0
    while len(docs) < args.docs:
        text = ""
        while len(text) < args.tokens * 7:  # comfortably over `tokens` tokens of German
            text += lines[i % len(lines)] + " "
            i += 1
        docs.append(text)

    with tempfile.TemporaryDirectory() as work:
        model_dir = Path(work) / "encoder"
        encoder = XLMRobertaModel(config, add_pooling_layer=False)
        encoder.save_pretrained(model_dir / "hf")
        tokenizer.save_pretrained(model_dir / "hf")
        transformer = st_models.Transformer(str(model_dir / "hf"), max_seq_length=args.tokens)
        SentenceTransformer(modules=[transformer, st_models.Pooling(hidden, "mean"), st_models.Normalize()]).save(str(model_dir / "st"))
        params = sum(p.numel() for p in encoder.parameters())
        print(f"device {device} ({torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}), encoder {params / 1e6:.0f}M params, "
              f"{len(docs)} docs × {args.tokens} tokens, batch {args.batch}, {args.heads} heads")

        root = str(Path(work) / "root")
        store = ShardStore(root)
        with store.open_unit(UnitKey("curate", "bench.warc.gz", "b"), ["curated", "rejects"]) as unit:
            unit.write("curated", pa.Table.from_pylist([{"id": f"d{j:06d}", "text": t, "language": "de"} for j, t in enumerate(docs)],
                                                       schema=CURATED))
        curated_unit = unit.manifest.unit
        names = []
        for h in range(args.heads):
            name = f"bench-head-{h}"
            save_annotator(root, name, RegressionHead(hidden, 1000), {"judge": "bench", "training_data_hash": str(h)})
            names.append(name)
        emb_config = EmbedderConfig(model=str(model_dir / "st"), max_length=args.tokens, batch_size=args.batch, prefix="")

        # bare forward on the same shapes
        bare_model = XLMRobertaModel.from_pretrained(model_dir / "hf", add_pooling_layer=False).to(device)
        bare_model = bare_model.to(torch.bfloat16 if device == "cuda" else torch.float32).eval()
        started = time.perf_counter()
        batch = tokenizer(docs[: args.batch], truncation=True, max_length=args.tokens, padding="max_length", return_tensors="pt")
        tokenise_rate = args.batch / (time.perf_counter() - started)
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.inference_mode():
            bare_model(**batch)  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            for _ in range(0, len(docs), args.batch):
                bare_model(**batch)
            if device == "cuda":
                torch.cuda.synchronize()
        bare = len(docs) / (time.perf_counter() - started)
        del bare_model

        from kurate.annotators.jql import embedder_for

        embedder_for(emb_config).embed(docs[: args.batch])  # load + warm up once, as a Ray actor would
        started = time.perf_counter()
        embed_shard(curated_unit, root, emb_config)
        embed_s = time.perf_counter() - started
        heads_hash = "bench"
        started = time.perf_counter()
        score_shard(curated_unit, root, names, emb_config, heads_hash)
        score_s = time.perf_counter() - started
        path = len(docs) / (embed_s + score_s)
        print(f"bare encoder forward            {bare:10.1f} docs/s")
        print(f"score path (embed + {args.heads} heads)     {path:10.1f} docs/s   ratio {path / bare:.2f} (target ≥ 0.70)")
        print(f"  of which embed {embed_s:.2f} s, heads + commit {score_s:.2f} s; tokeniser alone {tokenise_rate:.0f} docs/s on one core")


if __name__ == "__main__":
    main()
