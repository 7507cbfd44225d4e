"""Core tokensets (arXiv 2410.05800) for text LMs: a replay buffer of the most informative
documents, and inside them only the most relevant units.

    model, codec, cfg = load_checkpoint("runs/r/checkpoints/demo-hat")
    rows = build_buffer(model, codec, [(doc_id, text), …], budget=0.01, token_fraction=0.1,
                        selection="craig", attribution="atman", window=cfg.seq_len + 1)
    # rows: one dict per kept document (coretokens schema): only the kept units' text, stored_bytes
    replay = replay_texts(rows)  # one KeptSpans per row: the kept units at their original positions

Units are what the model predicts: words for HAT and T-FREE, tokens for the BPE baseline. A
document is scored and attributed on its first `window` units ([BOS] + window − 1 units: the
context the model was trained on); longer documents are cut there.

1. **Sample selection** (`score_documents`, `select_documents`): one forward/backward pass per
   batch of documents gives each document's mean loss per unit and the gradient of its loss with
   respect to the backbone's last hidden states (the input of every model's head — the "last
   layer" gradient of GradMatch/CRAIG/BADGE, d values per position). `loss` and `gradnorm` pick
   the highest-scoring documents; `craig` greedily maximises the facility-location coverage of
   all candidates' mean last-layer gradients (cosine similarity), so the picked documents
   represent the gradient directions of the whole candidate set; `random` is the baseline.
   Documents are taken in order until they hold budget / token_fraction units.
2. **Token attribution** (`atman_relevance`, `gradxinput_relevance`): AtMan-style suppression —
   for every unit position p one copy of the document in which every layer's and head's
   attention to key p is suppressed, in batches, no backward pass; the relevance of unit p is how
   much the model's loss on the other units rises. f defaults to 0.9, AtMan's, and the default
   manipulation is the official one (Aleph-Alpha/AtMan, `Explainer(suppression_factor=0.1)`,
   `manipulate_attention_scores`): the suppressed key's pre-softmax score, shifted by its row's
   minimum, is multiplied by 1 − f (`manipulation="scores"`, the backbone's `key_scale`, an unfused
   attention path). `manipulation="weights"` scales the key's attention *weight* by 1 − f instead
   (an additive log(1 − f) score bias the fused kernel takes, renormalised by the softmax; faster,
   not the paper's). Gradient×input is the second method:
   |∂loss/∂x_p · x_p| at the backbone's input embeddings (one backward pass per batch).
   Each document keeps its ceil(token_fraction · units) most relevant units (at least one).
3. **What is stored and replayed.** `replay="kept"` (the default; the paper stores only the
   selected tokens): `kept_rows` stores the kept spans' text and nothing else; `replay_texts`
   gives one `KeptSpans` per row, packed as [BOS] + the kept units at their original positions
   (the models' `positions`, models/contracts.py), each span after a BOS placeholder at the
   position of the unit before it (it predicts the span's first unit from the kept units before;
   no stored text, no loss). A kept span whose text the codec would split differently on its own
   (a BPE token cut out of a word) starts earlier until it does not: those units are kept too.
   `stored_bytes` is then the kept units' bytes.
   `replay="context"`: each span is replayed after masked context (below), and the row stores the
   text up to its last kept unit (`stored_bytes` counts all of it).
4. **Spans and their context** (`span_rows`): kept unit indices merge into [start, end) spans with
   their UTF-8 byte offsets in the text. Each span is replayed with a bounded context: the
   `context_units` units before it (masked: input only), from `context_start`. A span whose
   context reaches back to the previous span's end continues that span's segment (its context is
   the whole gap), so a segment is [BOS] + context + span (+ gap ≤ context_units + span …), and
   `context_start` == the previous span's end says so. When the codec would split the segment's
   text differently from the document (a BPE word cut in the middle), the context starts earlier
   until it does not. `context_units=None` keeps every unit before a span (one segment from the
   document's start). The
   stored text ends with the last kept unit; `replay_texts` cuts the segments out of it.

`attribution="full"` keeps whole documents (the full-document coreset at the same budget, or at
`byte_budget` stored bytes: the coresets that models/continual.py matches by storage).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from kurate.models.packing import KeptSpans, MaskedText

SELECTIONS = ("loss", "gradnorm", "craig", "random")
ATTRIBUTIONS = ("atman", "gradxinput", "full")
REPLAYS = ("kept", "context")
ATMAN_SUPPRESSION = 0.9  # AtMan's f (see the module docstring)
MANIPULATIONS = ("scores", "weights")  # AtMan's row-min-shifted score scaling (official), or the weight scaling


def _device(model) -> torch.device:
    return next(model.parameters()).device


def encode_docs(codec, texts: list[str], window: int) -> list[list]:
    """Units of each text (without BOS), cut so that [BOS] + units fits the window."""
    return [codec.encode(t)[:window - 1] for t in texts]


def doc_batch(codec, docs: list[list], device=None) -> dict[str, torch.Tensor]:
    """One document per row: [BOS] + units, padded with BOS units whose targets are masked."""
    n = max(len(d) for d in docs) + 1
    seqs = [[codec.bos] + d + [codec.bos] * (n - 1 - len(d)) for d in docs]
    batch = codec.collate(seqs)
    mask = torch.zeros(len(docs), n, dtype=torch.bool)
    for i, d in enumerate(docs):
        mask[i, 1:len(d) + 1] = True
    batch["loss_mask"] = mask
    return {k: v.to(device) for k, v in batch.items()} if device is not None else batch


class _Capture:
    """Forward hook on `model.backbone`: keeps its input (pre) or output, made differentiable."""

    def __init__(self, module, where: str):
        self.value = None
        if where == "input":
            self.handle = module.register_forward_pre_hook(self._pre)
        else:
            self.handle = module.register_forward_hook(self._post)

    def _pre(self, module, args):
        x = args[0].detach().requires_grad_(True)
        self.value = x
        return (x, *args[1:])

    def _post(self, module, args, out):
        self.value = out
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


# ---------------------------------------------------------------------------------------------
# sample selection


@dataclass
class DocScores:
    loss: np.ndarray  # (N,) mean loss per unit
    grad_norm: np.ndarray  # (N,) norm of the loss gradient w.r.t. the last hidden states
    grad_emb: np.ndarray  # (N, d) mean of that gradient over positions
    units: np.ndarray  # (N,) units per document (within the window)


@contextlib.contextmanager
def _scoring_mode(model):
    """Train mode for a scoring pass (the models have no dropout; train mode skips T-FREE's
    dictionary scoring), restored afterwards."""
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)


def _captured_batches(model, codec, docs: list[list], where: str, batch_size: int):
    """Per batch of documents: (documents, batch, model output, the backbone's captured input or
    output tensor) — what both gradient passes (selection, gradient×input) start from."""
    dev = _device(model)
    for s in range(0, len(docs), batch_size):
        chunk = docs[s:s + batch_size]
        batch = doc_batch(codec, chunk, dev)
        with _Capture(model.backbone, where) as cap:
            out = model(batch)
        yield chunk, batch, out, cap.value


def score_documents(model, codec, docs: list[list], batch_size: int = 16) -> DocScores:
    """Per-document loss and last-layer gradient embedding (see the module docstring)."""
    loss, norm, emb = [], [], []
    with _scoring_mode(model):
        for _, batch, out, h in _captured_batches(model, codec, docs, "output", batch_size):
            keep = batch["loss_mask"][:, 1:].float()
            n = keep.sum(1).clamp(min=1)
            per_doc = (out["unit_loss"] * keep).sum(1) / n
            (g,) = torch.autograd.grad(per_doc.sum(), h)  # h (B, T, d): each row's states feed only that row's loss
            g = g.float() * keep[..., None]
            loss.append(per_doc.detach().float().cpu())
            norm.append(g.flatten(1).norm(dim=1).cpu())
            emb.append((g.sum(1) / n[:, None]).cpu())
    return DocScores(torch.cat(loss).numpy(), torch.cat(norm).numpy(), torch.cat(emb).numpy(),
                     np.array([len(d) for d in docs]))


def craig_order(emb: np.ndarray, k: int) -> list[int]:
    """Greedy facility location over cosine similarities: each pick covers the candidates most
    similar to it that are not yet covered (CRAIG); returns up to k indices in pick order."""
    x = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    sim = sim - sim.min()  # facility location needs non-negative similarities
    covered = np.zeros(len(x))
    order: list[int] = []
    for _ in range(min(k, len(x))):
        gain = np.maximum(sim - covered[:, None], 0).sum(0)
        gain[order] = -1
        j = int(gain.argmax())
        order.append(j)
        covered = np.maximum(covered, sim[:, j])
    return order


def select_documents(scores: DocScores, unit_budget: float, method: str = "craig", seed: int = 0,
                     sizes: np.ndarray | None = None) -> list[int]:
    """Indices of documents, in priority order, until they hold at least unit_budget units (or, given
    `sizes` per document, e.g. bytes: until their sizes reach unit_budget)."""
    n = len(scores.units)
    sizes = scores.units if sizes is None else np.asarray(sizes)
    if method == "loss":
        order = list(np.argsort(-scores.loss, kind="stable"))
    elif method == "gradnorm":
        order = list(np.argsort(-scores.grad_norm, kind="stable"))
    elif method == "random":
        order = list(np.random.default_rng(seed).permutation(n))
    elif method == "craig":
        # pick as many as the budget could need (the smallest documents first bound it)
        k = int(np.searchsorted(np.cumsum(np.sort(sizes)), unit_budget)) + 1
        order = craig_order(scores.grad_emb, k)
    else:
        raise ValueError(f"unknown selection {method!r}; choose one of {SELECTIONS}")
    picked, total = [], 0
    for i in order:
        if total >= unit_budget:
            break
        picked.append(int(i))
        total += int(sizes[i])
    return picked


# ---------------------------------------------------------------------------------------------
# token attribution


@torch.no_grad()
def atman_relevance(model, codec, units: list, suppression: float = ATMAN_SUPPRESSION,
                    batch_size: int = 64, manipulation: str = "scores") -> np.ndarray:
    """Relevance of each unit: the rise of the loss on the other units when every layer's
    attention to it is suppressed by `suppression` (f): "scores" multiplies its row-min-shifted
    pre-softmax score by 1 − f (AtMan's official manipulation), "weights" its attention weight
    (1.0: removed). One forward pass per batch of perturbed copies. Every query keeps the BOS key,
    which is never suppressed."""
    assert 0 < suppression <= 1, "suppression must be in (0, 1]"
    if manipulation not in MANIPULATIONS:
        raise ValueError(f"unknown manipulation {manipulation!r}; choose one of {MANIPULATIONS}")
    dev = _device(model)
    with _scoring_mode(model):
        base_batch = doc_batch(codec, [units], dev)
        keep = base_batch["loss_mask"][:, 1:].float()
        base = (model(base_batch)["unit_loss"].float() * keep)[0]
        n = len(units) + 1  # positions of [BOS] + units; BOS (position 0) is not a candidate
        rel = np.zeros(len(units))
        positions = list(range(1, n - 1))  # the last unit is no one's context
        if manipulation == "scores":
            key, neutral, value = "key_scale", 1.0, 1.0 - suppression
        else:
            key, neutral, value = "key_bias", 0.0, math.log(1 - suppression) if suppression < 1 else float("-inf")
        for s in range(0, len(positions), batch_size):
            ps = positions[s:s + batch_size]
            batch = {k: v.expand(len(ps), *v.shape[1:]) for k, v in base_batch.items()}
            kb = torch.full((len(ps), n), neutral, device=dev)
            kb[torch.arange(len(ps)), torch.tensor(ps)] = value
            batch[key] = kb
            loss = model(batch)["unit_loss"].float() * keep
            rel[[p - 1 for p in ps]] = (loss - base).sum(1).cpu().numpy()
    return rel


def gradxinput_relevance(model, codec, docs: list[list], batch_size: int = 16) -> list[np.ndarray]:
    """|∂loss/∂x · x| per unit at the backbone's input embeddings (x_p: the embedding of unit p,
    which feeds the predictions of the units after it); one backward pass per batch."""
    out_rel = []
    with _scoring_mode(model):
        for chunk, batch, out, x in _captured_batches(model, codec, docs, "input", batch_size):
            loss = (out["unit_loss"] * batch["loss_mask"][:, 1:]).sum()
            (g,) = torch.autograd.grad(loss, x)
            r = (g * x).sum(-1).abs().detach().float().cpu().numpy()  # (B, T) over inputs
            for i, d in enumerate(chunk):
                rel = np.zeros(len(d))
                rel[:-1] = r[i, 1:len(d)]  # input position p (1..) is unit p − 1; the last unit feeds nothing
                out_rel.append(rel)
    return out_rel


def top_spans(relevance: np.ndarray, fraction: float) -> list[tuple[int, int]]:
    """The ceil(fraction · n) most relevant units (at least one), merged into [start, end) spans."""
    n = len(relevance)
    if n == 0:
        return []
    k = max(1, math.ceil(fraction * n))
    keep = np.sort(np.argsort(-relevance, kind="stable")[:k])
    spans: list[tuple[int, int]] = []
    for j in keep.tolist():
        if spans and spans[-1][1] == j:
            spans[-1] = (spans[-1][0], j + 1)
        else:
            spans.append((j, j + 1))
    return spans


# ---------------------------------------------------------------------------------------------
# the buffer


def build_buffer(model, codec, docs: list[tuple[str, str]], budget: float, token_fraction: float = 0.1,
                 selection: str = "craig", attribution: str = "atman", window: int = 65, seed: int = 0,
                 scores: DocScores | None = None, units: list[list] | None = None,
                 context_units: int | None = 16, replay: str = "kept", suppression: float = ATMAN_SUPPRESSION,
                 byte_budget: int | None = None, manipulation: str = "scores") -> list[dict]:
    """Rows of the `coretokens` dataset (without model/checkpoint columns) for one buffer.

    budget: the share of the candidates' units the buffer trains on. With attribution "full"
    whole documents are kept up to that many units (or, given byte_budget, until they hold that many
    bytes); otherwise documents holding budget / token_fraction of the units are selected and
    token_fraction of each is kept. Pass `scores`/`units` to reuse one scoring pass for several
    buffers. replay: "kept" stores and replays only the kept units, "context" also the masked
    context before each kept span (context_units; None: everything before it; see `span_rows`).
    suppression, manipulation: AtMan's f and how it is applied (`atman_relevance`).
    """
    if replay not in REPLAYS:
        raise ValueError(f"unknown replay {replay!r}; choose one of {REPLAYS}")
    if context_units is not None and context_units < 0:
        raise ValueError("context_units must be >= 0 (or None: the whole prefix)")
    if attribution not in ATTRIBUTIONS:
        raise ValueError(f"unknown attribution {attribution!r}; choose one of {ATTRIBUTIONS}")
    if not 0 < token_fraction <= 1:
        raise ValueError("token_fraction must be in (0, 1]")
    units = units if units is not None else encode_docs(codec, [t for _, t in docs], window)
    if scores is None:
        scores = (score_documents(model, codec, units) if selection != "random" else
                  DocScores(np.zeros(len(units)), np.zeros(len(units)), np.zeros((len(units), 1)),
                            np.array([len(u) for u in units])))
    total = int(scores.units.sum())
    full = attribution == "full"
    if byte_budget is not None:
        if not full:
            raise ValueError("byte_budget is for whole-document coresets (attribution 'full')")
        sizes = np.array([sum(codec.unit_bytes(x) for x in u) for u in units])
        picked = select_documents(scores, byte_budget, selection, seed, sizes=sizes)
    else:
        picked = select_documents(scores, budget * total / (1.0 if full else token_fraction), selection, seed)
    picked = [i for i in picked if units[i]]
    if full:
        spans = [[(0, len(units[i]))] for i in picked]
    elif attribution == "atman":
        spans = [top_spans(atman_relevance(model, codec, units[i], suppression, manipulation=manipulation),
                           token_fraction) for i in picked]
    else:
        rels = gradxinput_relevance(model, codec, [units[i] for i in picked])
        spans = [top_spans(r, token_fraction) for r in rels]
    key = {"loss": scores.loss, "gradnorm": scores.grad_norm}.get(selection)
    rows = []
    for rank, (i, sp) in enumerate(zip(picked, spans)):
        doc_id, text = docs[i]
        kept = replay == "kept" or full  # a whole document has no context to replay
        if kept:
            span_dicts, stored = kept_rows(codec, text, units[i], sp)
        else:
            span_dicts, stored = span_rows(codec, text, units[i], sp, context_units)
        rows.append({
            "id": doc_id, "selection": selection, "method": attribution, "budget": float(budget),
            "token_fraction": 1.0 if full else float(token_fraction), "rank": rank,
            "score": float(key[i]) if key is not None else None,
            "doc_units": len(units[i]), "kept_units": sum(s["end"] - s["start"] for s in span_dicts),
            "replay": "kept" if kept else "context", "context_units": None if kept else context_units,
            "stored_bytes": len(stored.encode("utf-8")), "spans": span_dicts, "text": stored,
        })
    return rows


def kept_rows(codec, text: str, units: list, spans: list[tuple[int, int]]) -> tuple[list[dict], str]:
    """The `spans` column and stored text of one `replay="kept"` row: only the kept spans' text,
    joined; byte offsets index that stored text, context_start == start (no context). A span
    whose text the codec splits differently on its own starts earlier until it does not (merging
    into the span before it if it reaches it)."""
    if not spans:
        return [], ""
    ends = np.cumsum([codec.unit_bytes(u) for u in units])
    starts = ends - np.array([codec.unit_bytes(u) for u in units])
    raw = text.encode("utf-8")

    def piece(a: int, b: int) -> str:
        return raw[int(starts[a]):int(ends[b - 1])].decode("utf-8", errors="ignore")

    merged: list[list[int]] = []
    for a, b in spans:
        floor = merged[-1][1] if merged else 0
        while a > floor and list(codec.encode(piece(a, b))) != list(units[a:b]):
            a -= 1
        if merged and a == floor:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    out, stored, at = [], [], 0
    for a, b in merged:
        p = piece(a, b).encode("utf-8")
        out.append({"start": a, "end": b, "byte_start": at, "byte_end": at + len(p),
                    "context_start": a, "context_byte_start": at})
        stored.append(p)
        at += len(p)
    return out, b"".join(stored).decode("utf-8", errors="ignore")


def span_rows(codec, text: str, units: list, spans: list[tuple[int, int]],
              context_units: int | None = 16) -> tuple[list[dict], str]:
    """The `spans` column of one buffer row (unit and byte offsets of each kept span and of its
    context's start) and the stored text (up to the last kept unit); see the module docstring."""
    if not spans:
        return [], ""
    ends = np.cumsum([codec.unit_bytes(u) for u in units])
    starts = ends - np.array([codec.unit_bytes(u) for u in units])
    raw = text.encode("utf-8")

    def same_units(cs: int, end: int) -> bool:
        piece = raw[int(starts[cs]):int(ends[end - 1])].decode("utf-8", errors="ignore")
        return list(codec.encode(piece)) == list(units[cs:end])

    groups: list[list] = []  # [context start, [spans]] per segment
    for a, b in spans:
        prev = groups[-1][1][-1][1] if groups else 0
        cs = prev if context_units is None else max(prev, a - context_units)
        if groups and cs == prev:
            groups[-1][1].append((a, b))
            continue
        floor = prev
        while cs > floor and not same_units(cs, b):  # the codec splits the cut text differently
            cs -= 1
        if groups and cs == floor:
            groups[-1][1].append((a, b))
        else:
            groups.append([cs, [(a, b)]])
    out = []
    for cs, group in groups:
        for k, (a, b) in enumerate(group):
            c = cs if k == 0 else group[k - 1][1]
            out.append({"start": a, "end": b, "byte_start": int(starts[a]), "byte_end": int(ends[b - 1]),
                        "context_start": int(c), "context_byte_start": int(starts[c]) if c < len(units) else int(ends[-1])})
    return out, raw[:int(ends[spans[-1][1] - 1])].decode("utf-8", errors="ignore")


def replay_segments(row: dict) -> list:
    """One coretokens row → its replay documents. replay "kept": one KeptSpans (the kept units at
    their original positions); "context": per segment, the text from its context's start to its
    last span's end, counting only the spans' units (MaskedText; the Packer adds [BOS])."""
    spans = row["spans"] or []
    if not spans:
        return []
    raw = row["text"].encode("utf-8")
    if row.get("replay", "context") == "kept":
        return [KeptSpans([raw[s["byte_start"]:s["byte_end"]].decode("utf-8", errors="ignore") for s in spans],
                          [s["start"] for s in spans])]
    segments, group = [], [spans[0]]
    for prev, s in zip(spans, spans[1:]):
        if s["context_start"] == prev["end"]:
            group.append(s)
        else:
            segments.append(group)
            group = [s]
    segments.append(group)
    out = []
    for g in segments:
        cs = g[0]["context_start"]
        piece = raw[g[0]["context_byte_start"]:g[-1]["byte_end"]].decode("utf-8", errors="ignore")
        out.append(MaskedText(piece, [(s["start"] - cs, s["end"] - cs) for s in g]))
    return out


def replay_texts(rows: list[dict]):
    """coretokens rows → training documents that count only their kept units (KeptSpans, or one
    MaskedText per segment for replay "context"; see replay_segments)."""
    return [t for r in rows for t in replay_segments(r)]
