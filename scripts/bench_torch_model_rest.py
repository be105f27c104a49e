#!/usr/bin/env python3
"""What a decoder model runs besides its blocks' linear layers, timed as PyTorch runs it, so that
`scripts/model_whole.py` can estimate whole-model inference speedups from the linear layers that
`slope model` measures.

Per model (its architecture from `slope models --csv`), one sequence of `--tokens` tokens, fp16:
  block_rest_ms  one decoder block without its linear products: the two norms (LayerNorm with
                 bias, or RMSNorm), the fused q/k/v output split into heads, rotary embeddings
                 (models without a position table), scaled-dot-product attention (causal but for
                 BERT; grouped-query where kv_heads < heads), the heads merged back, the
                 activation (ReLU for OPT, SiLU(gate) * up for LLaMA and Mistral, GELU for GPT-2
                 and BERT) and the two residual adds;
  attention_ms   the attention core alone (part of block_rest_ms);
  once_ms        what a forward pass runs once besides its blocks: the token embedding gather
                 (plus OPT's learned positions), the final norm and the LM head's product over
                 every token, dense on both sides (SLoPe prunes the blocks' linear layers only);
  lm_head_ms     the LM head's product alone (part of once_ms).
The linear products themselves are not run; their outputs are stand-in tensors, as they are
inputs here. Each part is captured into a CUDA graph over inputs rotated past the L2
(torch_common.graph_ms), as slope times its own products. PyTorch runs one kernel per
operation (no fusion of norms, rotary or residual adds), so these times are an upper
estimate of the rest, and whole-model speedups built from them a lower estimate.
CSV columns:
  model,family,hidden,layers,tokens,block_rest_ms,attention_ms,once_ms,lm_head_ms,sets,torch_version,gpu
Usage: bench_torch_model_rest.py --models-csv FILE --out FILE.csv [--tokens 2048] [--model NAME ...]
"""
import argparse
import csv
import math
import sys

from torch_common import cuda_torch_missing, graph_ms, rotation_sets, write_csv

ACTIVATIONS = {"opt": "relu", "llama": "silu_gated", "mistral": "silu_gated", "gpt2": "gelu", "bert": "gelu"}


def read_models(path, names):
    """The rows of `slope models --csv` for `names` (all of them where empty), as dicts."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "model" not in rows[0]:
        raise ValueError(f"{path}: not a `slope models --csv` file")
    by_name = {r["model"].lower(): r for r in rows}
    by_name.update({r["paper_model"].lower(): r for r in rows})
    if not names:
        return rows
    missing = [n for n in names if n.lower() not in by_name]
    if missing:
        raise ValueError(f"unknown model(s) {', '.join(missing)} (in {path}: {', '.join(r['model'] for r in rows)})")
    return [by_name[n.lower()] for n in names]


def norm(x, layernorm, weight, bias):
    """LayerNorm with bias (OPT, GPT-2, BERT) or RMSNorm (LLaMA, Mistral) over the last dim."""
    import torch.nn.functional as F
    if layernorm:
        return F.layer_norm(x, (x.shape[-1],), weight, bias)
    return F.rms_norm(x, (x.shape[-1],), weight)


def rotate_half(x):
    import torch
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Block:
    """The stand-in tensors of one decoder block's rest: the residual stream and what each linear
    product hands over (the q/k/v, o, up (or gate and up) and down outputs)."""

    def __init__(self, m, t):
        import torch
        d, heads, kv, hd, ffn = (int(m[k]) for k in ("hidden", "heads", "kv_heads", "head_dim", "ffn"))
        self.t, self.d, self.heads, self.kv, self.hd = t, d, heads, kv, hd
        self.q_out, self.kv_out, self.ffn = heads * hd, kv * hd, ffn
        self.activation = ACTIVATIONS[m["family"]]
        self.layernorm = m["norm"] == "layernorm"
        self.causal = m["family"] != "bert"
        self.rotary = int(m["positions"]) == 0
        up_width = 2 * ffn if self.activation == "silu_gated" else ffn

        def rand(*shape):
            return torch.rand(*shape, device="cuda", dtype=torch.float16) * 2 - 1

        self.x, self.qkv, self.o = rand(t, d), rand(t, self.q_out + 2 * self.kv_out), rand(t, d)
        self.up, self.down = rand(t, up_width), rand(t, d)
        self.norm_w, self.norm_b = [rand(d) for _ in range(2)], [rand(d) for _ in range(2)]
        if self.rotary:  # as a model computes them once per forward, for every block
            pos = torch.arange(t, device="cuda", dtype=torch.float32)[:, None]
            inv = 10000.0 ** (-torch.arange(0, hd, 2, device="cuda", dtype=torch.float32) / hd)
            angles = torch.cat((pos * inv, pos * inv), dim=-1)
            self.cos, self.sin = angles.cos().half(), angles.sin().half()

    def bytes(self):
        return sum(v.numel() * v.element_size() for v in (self.x, self.qkv, self.o, self.up, self.down))

    def attention(self):
        import torch.nn.functional as F
        t, hd = self.t, self.hd
        q, k, v = self.qkv.split([self.q_out, self.kv_out, self.kv_out], dim=-1)
        q = q.view(1, t, self.heads, hd).transpose(1, 2)
        k = k.view(1, t, self.kv, hd).transpose(1, 2)
        v = v.view(1, t, self.kv, hd).transpose(1, 2)
        if self.rotary:
            q = q * self.cos + rotate_half(q) * self.sin
            k = k * self.cos + rotate_half(k) * self.sin
        a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, enable_gqa=self.kv < self.heads)
        return a.transpose(1, 2).reshape(t, self.q_out)  # the o product's input

    def activate(self):
        import torch.nn.functional as F
        if self.activation == "relu":
            return F.relu(self.up)
        if self.activation == "gelu":
            return F.gelu(self.up)
        gate, up = self.up.split([self.ffn, self.ffn], dim=-1)
        return F.silu(gate) * up

    def rest(self):
        """A pre-norm block's work between its linear products; the results feed them."""
        norm(self.x, self.layernorm, self.norm_w[0], self.norm_b[0])  # -> q/k/v product
        self.attention()                  # -> o product
        h = self.x + self.o               # residual
        norm(h, self.layernorm, self.norm_w[1], self.norm_b[1])       # -> up (gate and up) product
        self.activate()                   # -> down product
        return h + self.down              # residual: the next block's input


def rotated(make, cap=8):
    """Enough copies of what make() builds to rotate past the L2 (torch_common.rotation_sets)."""
    first = make()
    return [first] + [make() for _ in range(rotation_sets(first.bytes(), cap) - 1)]


def time_block(m, t):
    blocks = rotated(lambda: Block(m, t))
    calls = len(blocks) * max(1, math.ceil(20 / len(blocks)))
    rest = graph_ms(lambda i: blocks[i % len(blocks)].rest(), calls=calls)
    attention = graph_ms(lambda i: blocks[i % len(blocks)].attention(), calls=calls)
    return rest, attention, len(blocks)


def time_once(m, t):
    """Embedding gather (+ learned positions), final norm and the LM head over every token."""
    import torch
    import torch.nn.functional as F
    d, vocab, positions = int(m["hidden"]), int(m["vocab"]), int(m["positions"])
    embed = torch.rand(vocab, d, device="cuda", dtype=torch.float16) * 2 - 1
    head = embed if m["tied_lm_head"] == "1" else torch.rand(vocab, d, device="cuda", dtype=torch.float16) * 2 - 1
    pos_table = torch.rand(positions, d, device="cuda", dtype=torch.float16) if positions else None
    ids = torch.randint(0, vocab, (t,), device="cuda")
    pos_ids = torch.arange(t, device="cuda") % max(positions, 1)  # (GPT-2's 1024 rows wrap around)
    w, b = torch.rand(d, device="cuda", dtype=torch.float16), torch.rand(d, device="cuda", dtype=torch.float16)
    h = torch.rand(t, d, device="cuda", dtype=torch.float16) * 2 - 1

    def once(i):
        x = F.embedding(ids, embed)
        if pos_table is not None:
            x = x + F.embedding(pos_ids, pos_table)
        x = norm(x, m["norm"] == "layernorm", w, b)
        return F.linear(x, head)

    # The head (vocab x d) and its logits (tokens x vocab) are far larger than the L2: no rotation.
    return graph_ms(once, calls=5), graph_ms(lambda i: F.linear(h, head), calls=5)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models-csv", required=True, help="`slope models --csv FILE`'s output")
    p.add_argument("--out", required=True)
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--model", action="append", default=[], help="a model to time (repeatable); default: all")
    args = p.parse_args()
    if args.tokens <= 0:
        print("bench_torch_model_rest.py: error: --tokens must be positive", file=sys.stderr)
        return 2
    try:
        models = read_models(args.models_csv, args.model)
    except (OSError, ValueError) as e:
        print(f"bench_torch_model_rest.py: error: {e}", file=sys.stderr)
        return 2
    missing = cuda_torch_missing()
    if missing:
        print(f"bench_torch_model_rest.py: error: PyTorch with CUDA is not available: {missing}", file=sys.stderr)
        return 2
    import torch
    gpu = torch.cuda.get_device_name(0)
    rows = []
    for m in models:
        if m["family"] not in ACTIVATIONS:
            print(f"bench_torch_model_rest.py: {m['model']}: family {m['family']} unknown here, skipped",
                  file=sys.stderr)
            continue
        rest, attention, sets = time_block(m, args.tokens)
        once, lm_head = time_once(m, args.tokens)
        rows.append((m["model"], m["family"], int(m["hidden"]), int(m["layers"]), args.tokens, rest, attention, once,
                     lm_head, sets, torch.__version__, gpu))
        print(f"torch rest {m['model']:16} block rest {rest:7.4f} ms (attention {attention:7.4f})  "
              f"once per model {once:7.4f} ms (LM head {lm_head:7.4f})", file=sys.stderr)
        torch.cuda.empty_cache()
    write_csv(args.out, "model,family,hidden,layers,tokens,block_rest_ms,attention_ms,once_ms,lm_head_ms,sets,"
              "torch_version,gpu", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
