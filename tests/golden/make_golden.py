#!/usr/bin/python3
"""tests/golden/make_golden.py - remakes the golden folders in tests/golden/.

A TimeSformer in PyTorch written for this repository (bench/compare_pytorch.py times the same
model), run in float64: logits, the mean cross-entropy, every gradient by autograd, the input's
gradient and full-batch SGD steps, written in the layout the tests and `tsf parity` read
(tests/golden/README.md). Attention: space_only, joint_space_time, divided_space_time and the
paper's sparse_local_global and axial; position embeddings: space_time (the released
models), space (no time table) or none (--pos-embed; docs/model.md sections 3, 4 and 7).

For maintainers only: the library and its tests never run Python. Needs Debian's python3-torch
(PyTorch 1.13) and python3-numpy; run from the repository root with /usr/bin/python3.

THE COMMITTED FOLDERS were made by

  G="/usr/bin/python3 tests/golden/make_golden.py --img-size 16 --patch-size 4 --frames 3 \\
     --dim 24 --depth 2 --heads 3 --mlp-ratio 2 --classes 5 --batch 2"
  BASE="--seed 1 --activations --sgd-steps 3"
  RESIZED="--seed 2 --input-size 12 20 --input-frames 5"
  $G --attention space_only         $BASE    --out tests/golden/space_base
  $G --attention joint_space_time   $BASE    --out tests/golden/joint_base
  $G --attention divided_space_time $BASE    --out tests/golden/divided_base
  $G --attention space_only         $RESIZED --out tests/golden/space_resized
  $G --attention joint_space_time   $RESIZED --out tests/golden/joint_resized
  $G --attention divided_space_time $RESIZED --out tests/golden/divided_resized
  $G --attention divided_space_time --seed 3 --input-size 8 32 --out tests/golden/divided_samecount

  # the paper's two other schemes: the config's clip, another size and frame count, and a
  # 5 x 3 grid whose windows and parity classes differ in size
  BASE="--seed 4 --activations --sgd-steps 3"
  RESIZED="--seed 5 --input-size 12 20 --input-frames 5"
  ODD="--seed 6 --input-size 20 12"
  $G --attention sparse_local_global $BASE    --out tests/golden/local_global_base
  $G --attention sparse_local_global $RESIZED --out tests/golden/local_global_resized
  $G --attention sparse_local_global $ODD     --out tests/golden/local_global_odd
  $G --attention axial               $BASE    --out tests/golden/axial_base
  $G --attention axial               $RESIZED --out tests/golden/axial_resized
  $G --attention axial               $ODD     --out tests/golden/axial_odd

  # the position-embedding ablation, every scheme (12 x 20 clips, 3 frames)
  for a in space:space_only joint:joint_space_time divided:divided_space_time \
           local_global:sparse_local_global axial:axial; do
    $G --attention ${a#*:} --seed 7 --input-size 12 20 --pos-embed space \
       --out tests/golden/${a%%:*}_pos_space
    $G --attention ${a#*:} --seed 8 --input-size 12 20 --pos-embed none \
       --out tests/golden/${a%%:*}_pos_none
  done

  (`--compare tests/golden/NAME` with `--out /tmp/NAME` writes elsewhere and reports, file by
  file, whether the new folder is byte-identical to the committed one.)

BYTE FOR BYTE. Weights, input and labels come from seeded torch generators and are the same on
every machine. The results are computed in float64 and stored as float32, so they only change
where float64 rounding changes: the float64 losses in meta.json (last digits) and gradients
that are zero in exact arithmetic (the key part of every qkv bias: softmax ignores a shift
that is the same for every key), which hold rounding noise of about 1e-20. Those depend on the
BLAS library PyTorch calls. The committed folders are reproduced byte for byte with Debian's
OpenBLAS 0.3.21 (libopenblas0-pthread) using its Haswell kernels, e.g.

  OPENBLAS_CORETYPE=Haswell $G ...        (with OpenBLAS as the system's libblas.so.3), or
  LD_LIBRARY_PATH=<dir of OpenBLAS's libblas.so.3> OPENBLAS_CORETYPE=Haswell $G ...

With another BLAS (Debian's reference BLAS, OpenBLAS's AVX-512 kernels) only grads.safetensors
(those zero entries, ~1e-20) and meta.json (losses, ~1e-16) differ, far below what the tests
can see.

HOW IT COMPUTES. The weights come from the seeded procedure of init_weights() (docs/model.md
section 7; "golden" makes every tensor non-trivial). In float64 the model runs every layer as
elementary tensor operations in a fixed order (make_model(..., exact=True)), so the float64
results, not only their float32 roundings, are reproducible on one BLAS. The SGD steps follow
torch.optim.SGD's formulas (weight decay on every parameter, momentum buffer = first gradient,
Nesterov, dampening 0), written out. sparse_local_global and axial run as side steps and a
main step over groupings of the patch tokens (sequences(); docs/model.md section 4), gathered
by index; divided_space_time keeps its own reshapes.
"""
import argparse
import json
import math
import os
import struct
import sys
from collections import OrderedDict

ATTENTIONS = ("space_only", "joint_space_time", "divided_space_time", "sparse_local_global",
              "axial")
POS_EMBEDS = ("space_time", "space", "none")  # what the tokens get: position and time tables,
#                                               the position table only, neither

# The schemes that run a block as steps over groupings of the patch tokens (docs/model.md
# section 4): side steps (each with its own LayerNorm, attention and dense layer, named by
# STEP_NAMES) in order, then the main step (the block's own LayerNorm and attention, the cls
# token in front of every sequence). divided_space_time is written out on its own in
# make_model (the arithmetic the benchmark times); its entry names its steps, and run through
# the generic steps it gives the same bits.
SCHEMES = {
    "divided_space_time": (("time",), "space"),
    "sparse_local_global": (("window",), "stride"),
    "axial": (("time", "width"), "height"),
}
# side step's grouping -> (Hugging Face prefix, the model's module prefix)
STEP_NAMES = {"time": ("temporal", "t"), "window": ("local", "l"), "width": ("width", "w")}

# ------------------------------------------------------------------------------ names
# Hugging Face names (what the library reads and writes) -> the model's own names.
HF_TOP = {
    "timesformer.embeddings.cls_token": "cls_token",
    "timesformer.embeddings.position_embeddings": "pos_embed",
    "timesformer.embeddings.time_embeddings": "time_embed",
    "timesformer.embeddings.patch_embeddings.projection.weight": "patch.weight",
    "timesformer.embeddings.patch_embeddings.projection.bias": "patch.bias",
    "timesformer.layernorm.weight": "norm.weight",
    "timesformer.layernorm.bias": "norm.bias",
    "classifier.weight": "head.weight",
    "classifier.bias": "head.bias",
}
HF_BLOCK = {
    "layernorm_before": "norm1", "attention.attention.qkv": "attn.qkv",
    "attention.output.dense": "attn.proj", "layernorm_after": "norm2",
    "intermediate.dense": "fc1", "output.dense": "fc2",
}
for _hf, _own in STEP_NAMES.values():  # temporal_* -> t_*, local_* -> l_*, width_* -> w_*
    HF_BLOCK.update({_hf + "_layernorm": _own + "_norm",
                     _hf + "_attention.attention.qkv": _own + "_attn.qkv",
                     _hf + "_attention.output.dense": _own + "_attn.proj",
                     _hf + "_dense": _own + "_fc"})
HF_LAYER = "timesformer.encoder.layer."


def hf_to_local(name):
    if name in HF_TOP:
        return HF_TOP[name]
    if name.startswith(HF_LAYER):
        i, rest = name[len(HF_LAYER):].split(".", 1)
        module, kind = rest.rsplit(".", 1)
        if module in HF_BLOCK:
            return "blocks.%s.%s.%s" % (i, HF_BLOCK[module], kind)
    raise KeyError("unexpected tensor " + name)


def hf_names(c, variant):
    """The model's parameters by Hugging Face name (docs/model.md section 7) in the order
    init_weights() draws their random numbers: the embeddings (the position and time tables
    as c's pos_embed has them), then layer by layer the side steps (temporal for divided,
    local for sparse_local_global, temporal then width for axial), the attention step and the
    MLP, then the final LayerNorm and the classifier."""
    top = "timesformer.embeddings."
    pos = c.get("pos_embed", "space_time")
    names = [top + "cls_token"]
    if pos != "none":
        names.append(top + "position_embeddings")
    if pos == "space_time" and variant != "space_only":
        names.append(top + "time_embeddings")
    names += [top + "patch_embeddings.projection.weight",
              top + "patch_embeddings.projection.bias"]
    bias = c.get("qkv_bias", True)

    def attention(prefix):
        return [prefix + ".attention.qkv.weight"] + \
            ([prefix + ".attention.qkv.bias"] if bias else []) + \
            [prefix + ".output.dense.weight", prefix + ".output.dense.bias"]

    for i in range(c["depth"]):
        layer = "%s%d." % (HF_LAYER, i)
        for kind in SCHEMES.get(variant, ((), None))[0]:
            step = layer + STEP_NAMES[kind][0]
            names += [step + "_layernorm.weight", step + "_layernorm.bias"]
            names += attention(step + "_attention")
            names += [step + "_dense.weight", step + "_dense.bias"]
        names += [layer + "layernorm_before.weight", layer + "layernorm_before.bias"]
        names += attention(layer + "attention")
        names += [layer + s + "." + k for s in ("layernorm_after", "intermediate.dense",
                                                "output.dense") for k in ("weight", "bias")]
    return names + ["timesformer.layernorm.weight", "timesformer.layernorm.bias",
                    "classifier.weight", "classifier.bias"]


# ------------------------------------------------------------------------------ the model
def nearest_rows(n_out, n_in):
    """Rows of a table of n_in entries that PyTorch's 'nearest' resizing to n_out picks:
    floor(k * (n_in / n_out)) in float32, at most n_in - 1 (docs/model.md section 9)."""
    import numpy as np
    ratio = np.float32(n_in) / np.float32(n_out)
    return [min(int(np.floor(np.float32(k) * ratio)), n_in - 1) for k in range(n_out)]


def sequences(kind, T, Hp, Wp):
    """The sequences of a step over grouping `kind` of one clip's patch tokens, in the step's
    order (docs/model.md section 4), each a list of token indices, increasing: the token of
    frame t, patch row i, column j is (i*Wp + j)*T + t (row 1 + that of the clip).

      time     a sequence a patch (i, j): its T frames
      space    a sequence a frame t: its Hp*Wp patches
      width    a sequence a (t, i), t first: the Wp patches of the row
      height   a sequence a (t, j), t first: the Hp patches of the column
      window   the grid cut after row ceil(Hp/2) and column ceil(Wp/2): the windows top-left,
               top-right, bottom-left, bottom-right, each with all T frames
      stride   the parity classes (t mod 2, i mod 2, j mod 2) = (a, b, c), (a, b, c) in
               lexicographic order

    Sequences that would be empty (a window or class when T, Hp or Wp is 1) are left out."""
    def token(t, i, j):
        return (i * Wp + j) * T + t

    if kind == "time":
        seqs = [[token(t, i, j) for t in range(T)] for i in range(Hp) for j in range(Wp)]
    elif kind == "space":
        seqs = [sorted(token(t, i, j) for i in range(Hp) for j in range(Wp)) for t in range(T)]
    elif kind == "width":
        seqs = [[token(t, i, j) for j in range(Wp)] for t in range(T) for i in range(Hp)]
    elif kind == "height":
        seqs = [[token(t, i, j) for i in range(Hp)] for t in range(T) for j in range(Wp)]
    elif kind == "window":
        h, w = (Hp + 1) // 2, (Wp + 1) // 2
        halves = ((range(0, h), range(h, Hp)), (range(0, w), range(w, Wp)))
        seqs = [sorted(token(t, i, j) for i in rows for j in cols for t in range(T))
                for rows in halves[0] for cols in halves[1]]
    elif kind == "stride":
        seqs = [sorted(token(t, i, j) for t in range(a, T, 2) for i in range(b, Hp, 2)
                       for j in range(c, Wp, 2)) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    else:
        raise ValueError("unknown grouping " + kind)
    return [q for q in seqs if q]


def make_model(torch, c, variant, exact=False):
    """A TimeSformer of config c with attention `variant` (full name). c holds image, patch,
    frames, dim, depth, heads, classes (as bench/compare_pytorch.py's CONFIGS) and optionally
    mlp_ratio (4), chans (3), eps (1e-6), qkv_bias (True), pos_embed ("space_time"; "space":
    no time table; "none": no position table either, the bare cls token and patch embeddings).

    exact=False: PyTorch's own layers (nn.Conv2d, nn.Linear, nn.LayerNorm, F.gelu): what
    compare_pytorch.py times. exact=True: the same parameters, every layer written out as
    elementary operations in a fixed order (patches cut and multiplied by the kernel as a
    matrix; x @ W^T, then + b; LayerNorm from the mean and the biased variance; GELU from erf),
    the arithmetic the golden files were computed with.

    Clips of another size or frame count than the config's resize the position and time
    tables (nearest). forward(x, acts=None): x is (B, C, T, H, W); acts, a dict, receives
    embeddings, layer.N, pooled, final_norm and logits (docs/model.md section 3)."""
    nn, F = torch.nn, torch.nn.functional
    D, NH, P, C = c["dim"], c["heads"], c["patch"], c.get("chans", 3)
    HM, T0, GRID = int(D * c.get("mlp_ratio", 4.0)), c["frames"], c["image"] // c["patch"]
    eps, bias = c.get("eps", 1e-6), c.get("qkv_bias", True)
    scale = (D // NH) ** -0.5
    divided, space = variant == "divided_space_time", variant == "space_only"
    sides, main = SCHEMES.get(variant, ((), None))
    pos_embed = c.get("pos_embed", "space_time")
    has_pos, has_time = pos_embed != "none", pos_embed == "space_time" and not space
    if variant not in ATTENTIONS:
        raise ValueError("unknown attention " + variant)
    if pos_embed not in POS_EMBEDS:
        raise ValueError("unknown pos_embed " + pos_embed)

    if exact:
        def linear(m, x):
            y = x @ m.weight.t()
            return y if m.bias is None else y + m.bias

        def norm(m, x):
            mean = x.mean(-1, keepdim=True)
            var = ((x - mean) ** 2).mean(-1, keepdim=True)
            return (x - mean) / torch.sqrt(var + m.eps) * m.weight + m.bias

        def gelu(x):
            return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    else:
        def linear(m, x):
            return m(x)

        norm, gelu = linear, F.gelu

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.proj = nn.Linear(D, 3 * D, bias=bias), nn.Linear(D, D)

        def forward(self, x):  # (S, L, D): S sequences of L tokens
            S, L, _ = x.shape
            q, k, v = linear(self.qkv, x).reshape(S, L, 3, NH, D // NH).permute(2, 0, 3, 1,
                                                                              4).unbind(0)
            a = ((q @ k.transpose(-2, -1)) * scale).softmax(dim=-1)  # (S, NH, L, L)
            return linear(self.proj, (a @ v).transpose(1, 2).reshape(S, L, D))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            for kind in sides:  # a side step: its LayerNorm, attention and dense layer
                own = STEP_NAMES[kind][1]
                setattr(self, own + "_norm", nn.LayerNorm(D, eps=eps))
                setattr(self, own + "_attn", Attention())
                setattr(self, own + "_fc", nn.Linear(D, D))
            self.norm1, self.attn = nn.LayerNorm(D, eps=eps), Attention()
            self.norm2, self.fc1, self.fc2 = nn.LayerNorm(D, eps=eps), nn.Linear(D, HM), \
                nn.Linear(HM, D)

        def grouped(self, p, kind, shape, ln, attn, z0=None):
            """attn(LN(s)) for every sequence s of grouping `kind` (sequences()) of the patch
            tokens p (B, N*T, D), shape = (T, Hp, Wp), with z0 (B, 1, D) in front of each when
            given (a main step). Returns the patch outputs in token order (B, N*T, D) and,
            with z0, the mean of the G cls outputs in sequence order (B, 1, D). The grid's
            lines (time, width, height) run as one batch of B*G sequences; the few windows
            and parity classes, whose lengths may differ, one at a time (B each)."""
            seqs = sequences(kind, *shape)
            B, first = p.shape[0], 0 if z0 is None else 1
            order = torch.tensor([k for q in seqs for k in q])  # every patch token once
            g = p[:, order]  # sequence after sequence
            outs, cls, at = [], [], 0
            if kind in ("window", "stride"):
                batches = [(1, len(q)) for q in seqs]
            else:
                batches = [(len(seqs), len(seqs[0]))]
            for n, L in batches:
                s = g[:, at:at + n * L].reshape(B, n, L, D)
                if z0 is not None:
                    s = torch.cat([z0.unsqueeze(1).expand(B, n, 1, D), s], 2)
                o = attn(norm(ln, s.reshape(B * n, first + L, D))).reshape(B, n, first + L, D)
                if z0 is not None:
                    cls.append(o[:, :, 0])
                outs.append(o[:, :, first:].reshape(B, n * L, D))
                at += n * L
            r = torch.cat(outs, 1)[:, order.argsort()]  # back to token order
            return r, (torch.cat(cls, 1).mean(1, keepdim=True) if z0 is not None else None)

        def forward(self, x, B, T, Hp, Wp):
            N = Hp * Wp
            if sides and not divided:  # x (B, 1 + N*T, D) as for divided
                z0, p = x[:, :1], x[:, 1:]
                for kind in sides:  # p + fc(MHSA(LN(sequences))), the cls row left alone
                    own = STEP_NAMES[kind][1]
                    r, _ = self.grouped(p, kind, (T, Hp, Wp), getattr(self, own + "_norm"),
                                        getattr(self, own + "_attn"))
                    p = p + linear(getattr(self, own + "_fc"), r)
                r, cls = self.grouped(p, main, (T, Hp, Wp), self.norm1, self.attn, z0)
                x = torch.cat([z0 + cls, p + r], 1)
            elif divided:  # x (B, 1 + N*T, D), patch (n, t) at 1 + n*T + t
                cls, p = x[:, :1], x[:, 1:]
                r = linear(self.t_fc, self.t_attn(norm(self.t_norm, p.reshape(B * N, T, D))))
                u = p + r.reshape(B, N * T, D)
                s = u.reshape(B, N, T, D).transpose(1, 2)  # (B, T, N, D): the frames
                s = torch.cat([cls.unsqueeze(1).expand(B, T, 1, D), s], 2).reshape(B * T, 1 + N, D)
                o = self.attn(norm(self.norm1, s)).reshape(B, T, 1 + N, D)
                cls = cls + o[:, :, 0].mean(1, keepdim=True)
                u = u + o[:, :, 1:].transpose(1, 2).reshape(B, N * T, D)
                x = torch.cat([cls, u], 1)
            else:  # space_only: (B*T, 1 + N, D); joint: (B, 1 + N*T, D)
                x = x + self.attn(norm(self.norm1, x))
            return x + linear(self.fc2, gelu(linear(self.fc1, norm(self.norm2, x))))

    class TimeSformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(C, D, P, P)
            self.cls_token = nn.Parameter(0.02 * torch.randn(1, 1, D))
            if has_pos:
                self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + GRID * GRID, D))
            if has_time:
                self.time_embed = nn.Parameter(torch.zeros(1, T0, D))
            self.blocks = nn.ModuleList([Block() for _ in range(c["depth"])])
            self.norm, self.head = nn.LayerNorm(D, eps=eps), nn.Linear(D, c["classes"])

        def patches(self, x, B, T, Hp, Wp):  # (B, C, T, H, W) -> (B*T, Hp*Wp, D)
            if not exact:
                x = x.transpose(1, 2).reshape(B * T, C, x.shape[3], x.shape[4])
                return self.patch(x).flatten(2).transpose(1, 2)
            # patch (b, t, i, j) as one row, its pixels in (c, ky, kx) order; trailing pixels
            # that fill no patch are dropped
            x = x[:, :, :, :Hp * P, :Wp * P].reshape(B, C, T, Hp, P, Wp, P)
            x = x.permute(0, 2, 3, 5, 1, 4, 6).reshape(B * T, Hp * Wp, C * P * P)
            return x @ self.patch.weight.reshape(D, -1).t() + self.patch.bias

        def forward(self, x, acts=None):  # (B, C, T, H, W)
            B, _, T, H, W = x.shape
            Hp, Wp = H // P, W // P
            N = Hp * Wp
            e = self.patches(x, B, T, Hp, Wp)
            if has_pos:
                pos = self.pos_embed[0]  # (1 + GRID^2, D): row 0 for cls, then the grid
                if N != GRID * GRID:  # another patch count: the grid resized, nearest (the
                    # same count in another shape uses the table as it is, as the original)
                    rows = [0] + [1 + i * GRID + j for i in nearest_rows(Hp, GRID)
                                  for j in nearest_rows(Wp, GRID)]
                    pos = pos[torch.tensor(rows)]
                e = e + pos[1:]
                c0 = self.cls_token.reshape(1, D) + pos[:1]
            else:  # pos_embed none: the bare cls token and patch embeddings
                c0 = self.cls_token.reshape(1, D)
            if space:
                x = torch.cat([c0.expand(B * T, 1, D), e], 1)
            else:
                e = e.reshape(B, T, N, D)
                if has_time:
                    te = self.time_embed[0]  # (T0, D)
                    if T != T0:
                        te = te[torch.tensor(nearest_rows(T, T0))]
                    e = e + te.reshape(1, T, 1, D)
                x = torch.cat([c0.expand(B, 1, D), e.transpose(1, 2).reshape(B, N * T, D)], 1)
            if acts is not None:
                acts["embeddings"] = x
            for i, blk in enumerate(self.blocks):
                x = blk(x, B, T, Hp, Wp)
                if acts is not None:
                    acts["layer.%d" % i] = x
            cls = x[:, 0].reshape(B, T, D).mean(1) if space else x[:, 0]
            f = norm(self.norm, cls)
            logits = linear(self.head, f)
            if acts is not None:
                acts.update(pooled=cls, final_norm=f, logits=logits)
            return logits

    return TimeSformer()


def cross_entropy(torch, logits, labels):
    """Mean over the batch of log(sum_k exp(logit_k)) - logit_label (docs/model.md section 5)."""
    lse = torch.logsumexp(logits, 1)
    return (lse - logits.gather(1, labels.view(-1, 1)).squeeze(1)).mean()


# ------------------------------------------------------------------------------ weights
def init_weights(torch, c, variant, seed, init="golden"):
    """OrderedDict HF name -> float64 tensor holding float32 values, drawn in hf_names() order
    from one torch.Generator seeded with `seed` (docs/model.md section 7):

      patch projection weight and bias    U(-b, b), b = 1/sqrt(chans * patch^2), as
                                          (rand * 2 - 1) * b
      cls token, position table           normal(0, 0.02), clamped to [-2, 2]
      every Linear weight                 the same
      time table, Linear biases           golden: the same;        original: 0 (nothing drawn)
      LayerNorm weights                   golden: 1 + normal(0, 0.1) clamped; original: 1
      LayerNorm biases                    golden: normal(0, 0.02); original: 0
      temporal_dense, local_dense,        original: 0 after the draws above, every block
      width_dense

    Every draw is float64 (torch.randn / torch.rand with dtype float64); the result is
    rounded to float32 and widened again, so what is stored is what is computed with."""
    assert init in ("golden", "original")
    gen = torch.Generator().manual_seed(seed)
    golden = init == "golden"
    model = make_model(torch, c, variant)
    shapes = {n: tuple(model.state_dict()[hf_to_local(n)].shape) for n in hf_names(c, variant)}
    bound = 1.0 / math.sqrt(c.get("chans", 3) * c["patch"] ** 2)

    def normal(shape, std):
        return (torch.randn(shape, generator=gen, dtype=torch.float64) * std).clamp_(-2.0, 2.0)

    def zeros(shape):
        return torch.zeros(shape, dtype=torch.float64)

    out = OrderedDict()
    for name, shape in shapes.items():
        what = name.rsplit(".", 1)[-1]
        if ".projection." in name:
            t = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        elif what in ("cls_token", "position_embeddings"):
            t = normal(shape, 0.02)
        elif "layernorm" in name and what == "weight":
            t = 1.0 + normal(shape, 0.1) if golden else torch.ones(shape, dtype=torch.float64)
        elif what == "weight":
            t = normal(shape, 0.02)
        else:  # time table, LayerNorm and Linear biases
            t = normal(shape, 0.02) if golden else zeros(shape)
        if not golden and name.rsplit(".", 2)[-2] in ("temporal_dense", "local_dense",
                                                      "width_dense"):
            t = zeros(shape)
        out[name] = t.float().double()
    return out


# ------------------------------------------------------------------------------ files
def load_safetensors(torch, path):
    """name -> float32 tensor of a safetensors file of F32 tensors."""
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        if h["dtype"] != "F32":
            raise ValueError("%s: dtype %s (expected F32)" % (name, h["dtype"]))
        a, b = h["data_offsets"]
        arr = np.frombuffer(data, dtype="<f4", count=(b - a) // 4, offset=8 + n + a)
        out[name] = torch.from_numpy(arr.copy()).reshape(h["shape"])
    return out


def save_safetensors(path, tensors, metadata=None):
    """tensors: name -> torch tensor, stored as little-endian F32 in name order. The header is
    compact JSON (entries in name order, then __metadata__), padded with spaces to a multiple
    of 8 bytes."""
    import numpy as np
    header, blobs, at = OrderedDict(), [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().cpu().numpy()
        blob = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = OrderedDict(dtype="F32", shape=list(a.shape),
                                   data_offsets=[at, at + len(blob)])
        blobs.append(blob)
        at += len(blob)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_f32(path, t):
    import numpy as np
    np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4").tofile(path)


def compare_folders(new, old):
    """Per file of `new`: byte-identical to `old`'s, or the largest absolute difference of its
    numbers. Returns the number of files that differ."""
    import numpy as np
    differ = 0
    for fname in sorted(os.listdir(new)):
        a, b = os.path.join(new, fname), os.path.join(old, fname)
        if not os.path.exists(b):
            print("  %-26s missing in %s" % (fname, old))
            differ += 1
            continue
        if open(a, "rb").read() == open(b, "rb").read():
            print("  %-26s byte-identical" % fname)
            continue
        differ += 1
        if fname.endswith(".safetensors"):
            import torch
            x, y = load_safetensors(torch, a), load_safetensors(torch, b)
            if set(x) != set(y):
                print("  %-26s differs: other tensors" % fname)
                continue
            pairs = [(x[k].double().numpy(), y[k].double().numpy()) for k in sorted(x)]
        elif fname == "meta.json":
            pairs = [(np.array(_numbers(json.load(open(a)))),
                      np.array(_numbers(json.load(open(b)))))]
        else:
            dt = "<i4" if fname == "labels.bin" else "<f4"
            pairs = [(np.fromfile(a, dt).astype(float), np.fromfile(b, dt).astype(float))]
        if any(p.shape != q.shape for p, q in pairs):
            print("  %-26s differs: other shapes" % fname)
            continue
        diff = max(float(np.abs(p - q).max()) if p.size else 0.0 for p, q in pairs)
        print("  %-26s differs: max abs difference %.3g" % (fname, diff))
    return differ


def _numbers(v):
    if isinstance(v, bool):
        return [float(v)]
    if isinstance(v, (int, float)):
        return [float(v)]
    if isinstance(v, dict):
        return [n for k in sorted(v) for n in _numbers(v[k])]
    if isinstance(v, list):
        return [n for e in v for n in _numbers(e)]
    return []


# ------------------------------------------------------------------------------ golden
def make_golden(torch, a):
    import numpy as np
    torch.set_default_dtype(torch.float64)
    c = dict(image=a.img_size, patch=a.patch_size, chans=a.in_chans, frames=a.frames, dim=a.dim,
             depth=a.depth, heads=a.heads, mlp_ratio=a.mlp_ratio, classes=a.classes,
             qkv_bias=not a.no_qkv_bias, pos_embed=a.pos_embed)
    config = OrderedDict(img_size=a.img_size, patch_size=a.patch_size, in_chans=a.in_chans,
                         num_frames=a.frames, embed_dim=a.dim, depth=a.depth, num_heads=a.heads,
                         mlp_ratio=a.mlp_ratio, num_classes=a.classes,
                         attention_type=a.attention, ln_eps=1e-6, qkv_bias=not a.no_qkv_bias)
    if a.pos_embed != "space_time":  # written only when not the default (absent: space_time)
        config["pos_embed"] = a.pos_embed
    B, K = a.batch, a.classes
    H, W = a.input_size or (a.img_size, a.img_size)
    T = a.input_frames or a.frames

    weights = init_weights(torch, c, a.attention, a.seed, a.init)
    model = make_model(torch, c, a.attention, exact=True).double()
    model.load_state_dict({hf_to_local(k): v for k, v in weights.items()})
    params = OrderedDict((k, model.get_parameter(hf_to_local(k))) for k in weights)
    # the clip, then the labels, from a second generator (seed + 1)
    gen = torch.Generator().manual_seed(a.seed + 1)
    x = torch.randn(B, a.in_chans, T, H, W, generator=gen, dtype=torch.float64).float().double()
    if a.labels:
        labels = torch.tensor(a.labels)
        if labels.numel() != B:
            sys.exit("make_golden: --labels needs %d labels" % B)
    else:
        labels = torch.randint(0, K, (B,), generator=gen)

    os.makedirs(a.out, exist_ok=True)
    out = lambda f: os.path.join(a.out, f)  # noqa: E731
    x.requires_grad_(True)
    acts = {} if a.activations else None
    logits = model(x, acts)
    loss = cross_entropy(torch, logits, labels)
    loss.backward()
    save_safetensors(out("weights.safetensors"), params, {"config": json.dumps(config)})
    save_safetensors(out("grads.safetensors"), {k: p.grad for k, p in params.items()})
    write_f32(out("input.bin"), x)
    write_f32(out("input_grad.bin"), x.grad)
    write_f32(out("logits.bin"), logits)
    labels.numpy().astype("<i4").tofile(out("labels.bin"))
    if acts is not None:
        save_safetensors(out("activations.safetensors"), acts)
    meta = OrderedDict(config=config, seed=a.seed, init=a.init, batch=B,
                       input_shape=[B, a.in_chans, T, H, W], input_layout="B,C,T,H,W",
                       logits_shape=[B, K], labels=labels.tolist(), loss=loss.item(),
                       loss_f32=float(np.float32(loss.item())),
                       num_params=sum(p.numel() for p in params.values()),
                       dtype_computed="float64", dtype_stored="float32")

    if a.sgd_steps:
        x = x.detach()
        momentum = {}
        losses = []
        for _ in range(a.sgd_steps):
            step_loss = cross_entropy(torch, model(x), labels)
            grads = torch.autograd.grad(step_loss, list(params.values()))
            losses.append(step_loss.item())
            with torch.no_grad():  # torch.optim.SGD's update, written out
                for (name, p), g in zip(params.items(), grads):
                    d = g + a.weight_decay * p
                    if a.momentum:
                        buf = a.momentum * momentum[name] + d if name in momentum else d.clone()
                        momentum[name] = buf
                        d = buf if a.no_nesterov else d + a.momentum * buf
                    p -= a.lr * d
        with torch.no_grad():
            losses.append(cross_entropy(torch, model(x), labels).item())
        save_safetensors(out("weights_sgd.safetensors"), params)
        meta["sgd"] = OrderedDict(steps=a.sgd_steps, lr=a.lr, momentum=a.momentum,
                                  weight_decay=a.weight_decay, nesterov=not a.no_nesterov,
                                  dampening=0.0, losses_before_each_step_and_after=losses)
    with open(out("meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("make_golden: %s: %s%s, loss %.10f" % (
        a.out, a.attention, "" if a.pos_embed == "space_time" else ", pos_embed " + a.pos_embed,
        meta["loss"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="Exact commands and byte-for-byte notes: the header "
                                 "of this file and tests/golden/README.md.")
    ap.add_argument("--out", required=True, help="the folder to write")
    ap.add_argument("--attention", default="divided_space_time", choices=ATTENTIONS)
    ap.add_argument("--pos-embed", default="space_time", choices=POS_EMBEDS,
                    help="position and time tables (space_time), the position table only "
                    "(space) or neither (none)")
    for flag, default in (("--img-size", 32), ("--patch-size", 8), ("--in-chans", 3),
                          ("--frames", 4), ("--dim", 48), ("--depth", 2), ("--heads", 3),
                          ("--classes", 5)):
        ap.add_argument(flag, type=int, default=default)
    ap.add_argument("--mlp-ratio", type=float, default=4.0)
    ap.add_argument("--no-qkv-bias", action="store_true", help="qkv projections without bias")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                    help="clip size, if not the config's image size")
    ap.add_argument("--input-frames", type=int, help="clip length, if not --frames")
    ap.add_argument("--labels", type=lambda s: [int(v) for v in s.split(",")],
                    help="e.g. 1,3 (default: drawn)")
    ap.add_argument("--init", choices=("golden", "original"), default="golden")
    ap.add_argument("--activations", action="store_true",
                    help="also write activations.safetensors")
    ap.add_argument("--sgd-steps", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--no-nesterov", action="store_true")
    ap.add_argument("--compare", metavar="DIR",
                    help="afterwards, compare every file written with DIR's")
    a = ap.parse_args(argv)
    if a.dim % a.heads:
        ap.error("--dim must be a multiple of --heads")
    try:
        import torch
    except ImportError:
        sys.exit("make_golden: %s has no torch (Debian: apt-get install python3-torch "
                 "python3-numpy)" % sys.executable)
    make_golden(torch, a)
    if a.compare:
        print("make_golden: %s against %s" % (a.out, a.compare))
        return 1 if compare_folders(a.out, a.compare) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
