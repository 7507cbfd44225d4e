"""Shared pieces of the GPU benchmarks: Llama geometries with random weights and a BPE tokenizer
trained here on German prose (no hub access on the GPU machines)."""

from __future__ import annotations

import gzip
from pathlib import Path

GEOMETRIES = {
    # hidden, layers, heads, kv heads, intermediate
    "8b": (4096, 32, 32, 8, 14336),
    "1b": (2048, 16, 32, 8, 8192),
    "tiny": (64, 2, 4, 2, 128),
}
PROSE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "german-prose.txt.gz"


def build_tokenizer(vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    lines = gzip.open(PROSE, "rt").read().splitlines()[:20000]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<pad>", "</s>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>"), lines
