"""Tiny causal LMs built in code for judge tests: no downloads, seconds to build; and the local
OpenAI-compatible server (``python -m kurate.annotators.openai_server``) serving one over real HTTP.

``build_tiny_judge(path)`` saves a 2-layer Llama with a word-level tokenizer (with a chat
template) to ``path``. With ``forced_score=k`` the weights are edited so that the model answers
"k" right after a prompt ending in ":" or in the assistant turn, and then stops: every layer's output projections are zero,
so the last hidden state is the (normalised) embedding of the current token, and the LM head's rows
for "k" and the end token point along the embeddings of ":" and "k".
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

WORDS = """the a of and to in is it for on with as this that be are was by at from or an text
extract web page educational score rating points number whole write answer conclude justification
system user assistant careful annotator training language models useful teaching school level
der die das und ist ein eine zu mit von für im den nicht auf es sich des dem text seite
""".split()
SPECIALS = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|system|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def build_tiny_judge(path: str | Path, forced_score: int | None = None, seed: int = 0) -> str:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + [str(d) for d in range(10)] + sorted(set(WORDS)) + list(":.,!?\"'()-/*#"))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    core.add_special_tokens(SPECIALS)  # so "<|assistant|>" stays one token
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>")
    tokenizer.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=False, bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"],
                         pad_token_id=vocab["<pad>"])
    model = LlamaForCausalLM(config)
    if forced_score is not None:
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            emb = model.model.embed_tokens.weight

            def direction(token: str) -> torch.Tensor:
                vector = emb[vocab[token]]
                return vector / vector.norm()

            head = model.lm_head.weight
            head.mul_(0.01)
            # the answer follows the answer prefix (logits mode) or the assistant turn (generate mode)
            head[vocab[str(forced_score)]] = 60 * (direction(":") + direction("<|assistant|>"))
            head[vocab["</s>"]] = 60 * direction(str(forced_score))
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (at the time of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_openai_server(model: str, name: str, startup_s: float = 90) -> Iterator[str]:
    """``python -m kurate.annotators.openai_server`` serving ``model`` as ``name`` on a free local
    port; yields its base URL and stops the process afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kurate.annotators.openai_server", "--model", model, "--name", name,
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + startup_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    proc.kill()
                    raise RuntimeError(f"openai server did not start: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
