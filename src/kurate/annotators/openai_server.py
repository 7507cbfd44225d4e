"""A small OpenAI-compatible completions server over a transformers model.

    python -m kurate.annotators.openai_server --model PATH_OR_ID [--host 127.0.0.1] [--port 8000]

It serves ``/v1/models`` and ``/v1/completions`` (prompt, max_tokens, temperature, top_p, n, seed,
stop, repetition_penalty (the vLLM extension), logprobs = number of top log-probabilities of the
first generated token), which is what the ``openai`` judge and generator backends use. It exists so
the HTTP path is tested against a real server, and to serve a local judge on a workstation; for
production use vLLM or another real server.
"""

from __future__ import annotations

import argparse
import time
import uuid

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from kurate.annotators.backends.hf_transformers import TransformersBackend
from kurate.annotators.contracts import BackendFailure


class CompletionRequest(BaseModel):
    model: str
    prompt: str | list[str]
    max_tokens: int = 16
    temperature: float = 1.0
    n: int = 1
    seed: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    stop: str | list[str] | None = None
    logprobs: int | None = None


def build_app(backend: TransformersBackend, model_name: str) -> FastAPI:
    app = FastAPI(title="kurate judge server")
    torch = backend.torch

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model"}]}

    @app.post("/v1/completions")
    def completions(request: CompletionRequest) -> dict:
        if request.model != model_name:
            raise HTTPException(status_code=404, detail=f"model {request.model!r} not served (serving {model_name!r})")
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        choices = []
        for p_index, prompt in enumerate(prompts):
            if request.logprobs:
                logprobs = backend.next_token_logprobs([prompt])[0]
                top = torch.topk(logprobs, k=min(request.logprobs, logprobs.shape[-1]))
                tokens = [backend.tokenizer.decode([int(i)]) for i in top.indices]
                first = tokens[0]
                choices.append({
                    "index": p_index,
                    "text": first if request.max_tokens >= 1 else "",
                    "logprobs": {"tokens": [first], "token_logprobs": [float(top.values[0])],
                                 "top_logprobs": [{t: float(v) for t, v in zip(tokens, top.values)}]},
                    "finish_reason": "length",
                })
                continue
            stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
            result = backend.generate([prompt], request.n, request.max_tokens, request.temperature, request.seed or 0,
                                      top_p=request.top_p, repetition_penalty=request.repetition_penalty, stop=stop)[0]
            if isinstance(result, BackendFailure):
                raise HTTPException(status_code=500, detail=str(result))
            for i, text in enumerate(result.texts):
                cuts = [text.find(s) for s in stop if s in text]  # as OpenAI servers do: the stop string is not returned
                text = text[: min(cuts)] if cuts else text
                choices.append({"index": p_index * request.n + i, "text": text, "logprobs": None, "finish_reason": "stop"})
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": model_name, "choices": choices}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="transformers model path or HF id")
    parser.add_argument("--name", help="model name clients send (default: --model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args(argv)
    backend = TransformersBackend(args.model, args.dtype, batch_size=1)
    uvicorn.run(build_app(backend, args.name or args.model), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
