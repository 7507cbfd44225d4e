"""Prompt rendering shared by every backend: the model's chat template and document truncation by tokens."""

from __future__ import annotations


def plain_chat(messages: list[dict]) -> str:
    """A neutral chat rendering for models/servers without a chat template."""
    parts = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\nAssistant:"


class PromptRenderer:
    """Chat template + document truncation by tokens (by ~4 chars/token without a tokenizer)."""

    def __init__(self, tokenizer=None):
        self.tokenizer = tokenizer

    def truncate(self, document: str, max_tokens: int) -> tuple[str, int, bool]:
        """(the document cut to ``max_tokens``, its length in tokens before cutting, whether it was cut)."""
        if self.tokenizer is None:
            approx = max(1, len(document) // 4)
            if approx <= max_tokens:
                return document, approx, False
            return document[: max_tokens * 4], approx, True
        ids = self.tokenizer.encode(document, add_special_tokens=False)
        if len(ids) <= max_tokens:
            return document, len(ids), False
        return self.tokenizer.decode(ids[:max_tokens], skip_special_tokens=True), len(ids), True

    def count_tokens(self, text: str) -> int:
        return self.truncate(text, 10**9)[1]

    def render(self, messages: list[dict], answer_prefix: str | None) -> str:
        tok = self.tokenizer
        if tok is not None and getattr(tok, "chat_template", None):
            try:
                text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # noqa: BLE001 - some templates reject a system turn: fold it into the user turn
                merged = [{"role": "user", "content": "\n\n".join(m["content"] for m in messages)}]
                text = tok.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        else:
            text = plain_chat(messages)
        return text + (answer_prefix if answer_prefix else "")
