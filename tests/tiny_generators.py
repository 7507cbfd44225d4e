"""A tiny causal LM built in code whose generations are forced: no downloads, a second to build.

``build_tiny_generator(path, sentences)`` saves a 2-layer Llama whose tokenizer holds each given
sentence as one (non-special) token. The weights are edited as in ``tiny_models.build_tiny_judge``:
every layer's output projections are zero, so the last hidden state is the normalised embedding of
the current token, and the LM head is a bigram table along the embedding directions: after the
assistant turn (or a prompt ending in ":") comes sentence 1, after sentence k comes sentence k+1,
after the last one the end token. Greedy and sampled decoding (logit gaps of ~300) give exactly
``" ".join(sentences)``.
"""

from __future__ import annotations

from pathlib import Path

from tiny_models import CHAT_TEMPLATE, SPECIALS, WORDS


def build_tiny_generator(path: str | Path, sentences: list[str], seed: int = 0, hidden: int = 64) -> str:
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    base = SPECIALS + [str(d) for d in range(10)] + sorted(set(WORDS)) + list(":.,!?\"'()-/*#")
    vocab = {tok: i for i, tok in enumerate(base)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    core.add_special_tokens(SPECIALS)
    core.add_tokens([AddedToken(s, normalized=False) for s in sentences])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = [tokenizer.convert_tokens_to_ids(s) for s in sentences]

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False,
                         bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"], pad_token_id=vocab["<pad>"])
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight

        def direction(token_id: int) -> torch.Tensor:
            return emb[token_id] / emb[token_id].norm()

        head = model.lm_head.weight
        head.mul_(0.01)
        head[ids[0]] = 60 * (direction(vocab[":"]) + direction(vocab["<|assistant|>"]))
        for prev, nxt in zip(ids, ids[1:]):
            head[nxt] = 60 * direction(prev)
        head[vocab["</s>"]] = 60 * direction(ids[-1])
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
