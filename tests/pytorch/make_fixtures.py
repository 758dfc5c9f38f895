#!/usr/bin/python3
# Builds the PyTorch checkpoint fixtures that the C tests load with timesformer.h's
# torch.save reader. Run from the repository root:
#
#     /usr/bin/python3 tests/pytorch/make_fixtures.py          write, then check
#     /usr/bin/python3 tests/pytorch/make_fixtures.py --dump   also print zip entries,
#                                                               opcodes and GLOBALs
#
# Needs only torch (1.13), numpy and the standard library. The output is committed; the
# tests never run Python. The script is deterministic: running it again rewrites every
# file byte for byte (torch.save's zip writer stores no timestamps; the legacy format's
# storage keys are memory addresses, so legacy.bin is canonicalised, see save_legacy).
#
# Source: tests/golden/divided_base/weights.safetensors, the golden 2-block model
# (img 16, patch 4, 3 channels, 3 frames, dim 24, 3 heads, mlp 48, 5 classes, divided
# space-time attention). Every tensor below holds exactly those float32 values unless a
# dtype change is the point of the file.
#
# What each file is for:
#   hf_bin/            a Hugging Face style model folder: config.json (TimesformerConfig;
#                      labels include raw UTF-8 "café", a \u00ef escape and a surrogate-pair
#                      escape, as json.dumps writes them), preprocessor_config.json
#                      (VideoMAEImageProcessor) and pytorch_model.bin, torch.save of an
#                      OrderedDict of HF names -> float32 tensors that, like a real
#                      model.state_dict(), carries a _metadata attribute (so the pickle ends
#                      the dict with a BUILD).
#   orig.pyth          the facebookresearch TimeSformer checkpoint layout: {"epoch",
#                      "model_state" ("model." + original names), "optimizer_state" (a real
#                      SGD nesterov state dict after one step: momentum_buffer tensors, int
#                      keys, floats, booleans, None), "cfg" (YAML text), "extra" (an
#                      instance of UnknownConfig, a class of this script: a GLOBAL of a
#                      module no reader knows, followed by NEWOBJ and BUILD)}.
#   tricky.pth         {"state_dict": "module." + HF names} with awkward storage: block 0's
#                      fc1 weight is transposed in memory (stride (1, 48)); block 0's qkv
#                      weight and bias are views of one flat storage (the bias at offset
#                      1728); classifier.weight is a strided window into a larger NaN-filled
#                      buffer; the final LayerNorm bias is a slice at offset 17 of a NaN
#                      buffer; the patch projection weight is channels_last. Values equal
#                      the golden ones; the NaN padding shows any misread offset.
#   hf_f16/ hf_bf16/ hf_f64/
#                      the same folder with the state dict in float16, bfloat16, float64.
#   expect_f16.safetensors, expect_bf16.safetensors
#                      F32 safetensors (HF names) with exactly what the f16 / bf16 files
#                      hold, widened to float32. float64 widens the golden values exactly,
#                      so it is compared against the golden file itself.
#   sharded/           config.json, pytorch_model.bin.index.json and two shards, the way
#                      save_pretrained splits a large model (shards are plain dicts).
#   legacy.bin         the pre-1.6 non-zip torch.save format, which the reader must refuse
#                      with a message that names it.
#   evil_system.bin    a (partial) HF state dict whose classifier.bias unpickles by calling
#   evil_eval.bin      os.system / builtins.eval (GLOBAL posix.system / __builtin__.eval)
#                      to touch /tmp/tsf_pwned_by_pickle. The reader must refuse them
#                      without running anything. Never torch.load these two files.
#   orig_d64.pyth      a second original-layout checkpoint (img 16, patch 8, 2 frames,
#                      dim 64, depth 1, 3 classes, random weights) whose head count is
#                      not written anywhere and must be inferred (ViT rule dim / 64 = 1).
#   orig_d64_expect.safetensors
#                      the same weights with HF names and the config as __metadata__.
import collections
import io
import json
import os
import pickle
import pickletools
import struct
import sys
import types
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "golden", "divided_base", "weights.safetensors")
DEPTH = 2

# --------------------------------------------------------------------------- safetensors


def read_safetensors(path):
    """Returns (OrderedDict name -> float32 tensor, each with its own storage), metadata."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = collections.OrderedDict()
    for name in sorted(header):
        info = header[name]
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        arr = np.frombuffer(blob[base + b:base + e], dtype="<f4").copy()
        out[name] = torch.from_numpy(arr).reshape(info["shape"]).clone()
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """F32, little-endian, tensors in name order, contiguous; header padded with spaces."""
    header = collections.OrderedDict()
    chunks = []
    pos = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [pos, pos + len(data)]}
        chunks.append(data)
        pos += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


# --------------------------------------------------------------------------- names


def hf_order(depth):
    """HF names in the order TimesformerForVideoClassification.state_dict() lists them."""
    names = ["timesformer.embeddings.cls_token",
             "timesformer.embeddings.position_embeddings",
             "timesformer.embeddings.time_embeddings",
             "timesformer.embeddings.patch_embeddings.projection.weight",
             "timesformer.embeddings.patch_embeddings.projection.bias"]
    for i in range(depth):
        p = "timesformer.encoder.layer.%d." % i
        for m in ("attention.attention.qkv", "attention.output.dense", "intermediate.dense",
                  "output.dense", "layernorm_before", "layernorm_after", "temporal_layernorm",
                  "temporal_attention.attention.qkv", "temporal_attention.output.dense",
                  "temporal_dense"):
            names += [p + m + ".weight", p + m + ".bias"]
    names += ["timesformer.layernorm.weight", "timesformer.layernorm.bias",
              "classifier.weight", "classifier.bias"]
    return names


def orig_order(depth):
    """Original (facebookresearch vit.py) names in VisionTransformer.state_dict() order."""
    names = ["cls_token", "pos_embed", "time_embed", "patch_embed.proj.weight",
             "patch_embed.proj.bias"]
    for i in range(depth):
        p = "blocks.%d." % i
        for m in ("norm1", "attn.qkv", "attn.proj", "temporal_norm1", "temporal_attn.qkv",
                  "temporal_attn.proj", "temporal_fc", "norm2", "mlp.fc1", "mlp.fc2"):
            names += [p + m + ".weight", p + m + ".bias"]
    names += ["norm.weight", "norm.bias", "head.weight", "head.bias"]
    return names


def hf_to_orig(name):
    fixed = {"timesformer.embeddings.cls_token": "cls_token",
             "timesformer.embeddings.position_embeddings": "pos_embed",
             "timesformer.embeddings.time_embeddings": "time_embed"}
    if name in fixed:
        return fixed[name]
    stem, suffix = name.rsplit(".", 1)
    if stem == "timesformer.embeddings.patch_embeddings.projection":
        return "patch_embed.proj." + suffix
    if stem == "timesformer.layernorm":
        return "norm." + suffix
    if stem == "classifier":
        return "head." + suffix
    pre = "timesformer.encoder.layer."
    assert stem.startswith(pre), name
    idx, rest = stem[len(pre):].split(".", 1)
    sub = {"temporal_layernorm": "temporal_norm1",
           "temporal_attention.attention.qkv": "temporal_attn.qkv",
           "temporal_attention.output.dense": "temporal_attn.proj",
           "temporal_dense": "temporal_fc",
           "layernorm_before": "norm1",
           "attention.attention.qkv": "attn.qkv",
           "attention.output.dense": "attn.proj",
           "layernorm_after": "norm2",
           "intermediate.dense": "mlp.fc1",
           "output.dense": "mlp.fc2"}[rest]
    return "blocks.%s.%s.%s" % (idx, sub, suffix)


def with_metadata(sd, prefix=""):
    """Attaches a _metadata like nn.Module.state_dict() does ({'version': 1} per module
    prefix; only modules that own parameters are listed here)."""
    meta = collections.OrderedDict()
    meta[prefix[:-1] if prefix else ""] = {"version": 1}
    for name in sd:
        parts = name.split(".")[:-1]
        for k in range(1, len(parts) + 1):
            meta.setdefault(".".join(parts[:k]), {"version": 1})
    sd._metadata = meta
    return sd


# --------------------------------------------------------------------------- configs

LABELS = ["abseiling", "caf\u00e9", "na\u00efve dancing", "surfing \U0001F3C4",
          "tying knots"]


def hf_config_text():
    cfg = {
        "model_type": "timesformer",
        "architectures": ["TimesformerForVideoClassification"],
        "image_size": 16, "patch_size": 4, "num_channels": 3, "num_frames": 3,
        "hidden_size": 24, "num_hidden_layers": DEPTH, "num_attention_heads": 3,
        "intermediate_size": 48, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
        "layer_norm_eps": 1e-06, "qkv_bias": True, "attention_type": "divided_space_time",
        "drop_path_rate": 0.0,
        "id2label": {str(i): l for i, l in enumerate(LABELS)},
        "label2id": {l: i for i, l in enumerate(LABELS)},
        "torch_dtype": "float32", "transformers_version": "4.26.0",
    }
    # transformers writes json.dumps(indent=2, sort_keys=True), which escapes non-ASCII.
    # Keep "café" as raw UTF-8 and escape the other two the way json.dumps would, so one
    # file exercises raw UTF-8, a \uXXXX escape and a surrogate pair.
    text = json.dumps(cfg, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    text = text.replace("\u00ef", "\\u00ef").replace("\U0001F3C4", "\\ud83c\\udfc4")
    assert json.loads(text) == cfg
    return text


PREPROCESSOR = {
    "do_resize": True, "size": {"shortest_edge": 16}, "do_center_crop": True,
    "crop_size": {"height": 16, "width": 16}, "do_rescale": True,
    "rescale_factor": 0.00392156862745098, "do_normalize": True,
    "image_mean": [0.45, 0.45, 0.45], "image_std": [0.225, 0.225, 0.225], "resample": 2,
    "image_processor_type": "VideoMAEImageProcessor",
}


def yaml_cfg(num_frames, crop, num_classes, lr):
    """A short config dump in the style of the original (yacs CfgNode.dump, sorted)."""
    return ("DATA:\n"
            "  INPUT_CHANNEL_NUM:\n  - 3\n"
            "  MEAN:\n  - 0.45\n  - 0.45\n  - 0.45\n"
            "  NUM_FRAMES: %d\n"
            "  PATH_TO_DATA_DIR: ''\n"
            "  SAMPLING_RATE: 8\n"
            "  STD:\n  - 0.225\n  - 0.225\n  - 0.225\n"
            "  TEST_CROP_SIZE: %d\n"
            "  TRAIN_CROP_SIZE: %d\n"
            "MODEL:\n"
            "  ARCH: vit\n"
            "  LOSS_FUNC: cross_entropy\n"
            "  MODEL_NAME: vit_base_patch16_224\n"
            "  NUM_CLASSES: %d\n"
            "NUM_GPUS: 1\n"
            "SOLVER:\n"
            "  BASE_LR: %s\n"
            "  MOMENTUM: 0.9\n"
            "  NESTEROV: true\n"
            "  OPTIMIZING_METHOD: sgd\n"
            "  WEIGHT_DECAY: 0.0001\n"
            "TIMESFORMER:\n"
            "  ATTENTION_TYPE: divided_space_time\n"
            "  PRETRAINED_MODEL: ''\n"
            "TRAIN:\n"
            "  BATCH_SIZE: 8\n"
            "  DATASET: kinetics\n"
            "  ENABLE: true\n") % (num_frames, crop, crop, num_classes, repr(lr))


class UnknownConfig:
    """Stands for any user class a checkpoint may carry; pickled as GLOBAL __main__ ..."""

    def __init__(self):
        self.name = "tiny-divided"
        self.milestones = [11, 14]
        self.flags = {"mixed_precision": False, "ema": None}


class EvilSystem:
    def __reduce__(self):
        return (os.system, ("touch /tmp/tsf_pwned_by_pickle",))


class EvilEval:
    def __reduce__(self):
        import builtins
        return (builtins.eval, ("__import__('os').system('touch /tmp/tsf_pwned_by_pickle')",))


# --------------------------------------------------------------------------- writers


def path(*parts):
    p = os.path.join(HERE, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def write_text(rel, text):
    with open(path(rel), "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def hf_state(golden, convert=None, cls=collections.OrderedDict):
    sd = cls()
    for n in hf_order(DEPTH):
        t = golden[n].clone()
        sd[n] = convert(t) if convert else t
    return sd


def save_legacy(obj, dest):
    """torch.save(obj, dest, _use_new_zipfile_serialization=False), made reproducible.

    The legacy writer names each storage str(storage._cdata), a memory address, and writes
    the storages in sorted-address order, so two runs differ. A stand-in pickle module
    renames the keys "0", "1", ... in first-use order as they are pickled, and the storage
    records (int64 element count + raw bytes each) are then put in that key order. The
    result is still an ordinary legacy file that torch.load reads."""
    rename = {}
    nbytes = {}
    seen = {}

    class Pickler:
        def __init__(self, f, protocol):
            self._p = pickle.Pickler(f, protocol=protocol)

        def _set_pid(self, fn):
            def pid(o):
                r = fn(o)
                if isinstance(r, tuple) and r and r[0] == "storage":
                    key = rename.setdefault(r[2], str(len(rename)))
                    st = o._storage if isinstance(o, torch.storage.TypedStorage) else o
                    nbytes[key] = st.nbytes()
                    assert r[5] is None
                    r = (r[0], r[1], key) + r[3:]
                return r
            self._p.persistent_id = pid

        persistent_id = property(None, _set_pid)

        def dump(self, o):
            self._p.dump(o)

    def dump(o, f, protocol):
        if isinstance(o, list) and o and all(isinstance(k, str) and k in rename for k in o):
            seen["order"] = [rename[k] for k in o]
            o = sorted(seen["order"], key=int)
            pickle.dump(o, f, protocol=protocol)
            seen["tail"] = f.tell()
        else:
            pickle.dump(o, f, protocol=protocol)

    shim = types.ModuleType("pickle")
    shim.Pickler = Pickler
    shim.dump = dump
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_module=shim, _use_new_zipfile_serialization=False)
    blob = buf.getvalue()
    pos = seen["tail"]
    records = {}
    for key in seen["order"]:
        count = struct.unpack("<q", blob[pos:pos + 8])[0]
        assert count > 0
        end = pos + 8 + nbytes[key]
        records[key] = blob[pos:end]
        pos = end
    assert pos == len(blob), "unexpected bytes after the storages"
    with open(dest, "wb") as f:
        f.write(blob[:seen["tail"]])
        for key in sorted(records, key=int):
            f.write(records[key])


def make_d64():
    """Random float32 weights for the dim-64 model, in original names and order."""
    torch.manual_seed(7)
    sd = collections.OrderedDict()
    shapes = {"cls_token": (1, 1, 64), "pos_embed": (1, 5, 64), "time_embed": (1, 2, 64),
              "patch_embed.proj.weight": (64, 3, 8, 8), "patch_embed.proj.bias": (64,),
              "norm.weight": (64,), "norm.bias": (64,), "head.weight": (3, 64),
              "head.bias": (3,)}
    block = {"norm1": 64, "temporal_norm1": 64, "norm2": 64,
             "attn.qkv": (192, 64), "attn.proj": (64, 64),
             "temporal_attn.qkv": (192, 64), "temporal_attn.proj": (64, 64),
             "temporal_fc": (64, 64), "mlp.fc1": (128, 64), "mlp.fc2": (64, 128)}
    for name in orig_order(1):
        if name in shapes:
            shape = shapes[name]
        else:
            m, suffix = name[len("blocks.0."):].rsplit(".", 1)
            s = block[m]
            shape = (s,) if isinstance(s, int) else (s if suffix == "weight" else (s[0],))
        is_norm = name.endswith(("norm.weight", "norm1.weight", "norm2.weight"))
        if is_norm:
            t = 1.0 + 0.05 * torch.randn(shape)
        elif name.endswith(".bias"):
            t = 0.01 * torch.randn(shape)
        else:
            t = 0.02 * torch.randn(shape)
        sd[name] = t.to(torch.float32).contiguous()
    return sd


def orig_to_hf_map(depth):
    return {hf_to_orig(n): n for n in hf_order(depth)}


def build():
    golden, gmeta = read_safetensors(GOLDEN)
    names = hf_order(DEPTH)
    assert sorted(names) == sorted(golden), "golden names differ from the expected set"
    cfg_text = hf_config_text()
    pre_text = json.dumps(PREPROCESSOR, indent=2, sort_keys=True) + "\n"

    # 1. Hugging Face folder, float32.
    write_text("hf_bin/config.json", cfg_text)
    write_text("hf_bin/preprocessor_config.json", pre_text)
    torch.save(with_metadata(hf_state(golden)), path("hf_bin/pytorch_model.bin"))

    # 2. Original layout with an optimizer state, a YAML cfg and an unknown class.
    model_state = collections.OrderedDict()
    o2h = orig_to_hf_map(DEPTH)
    for on in orig_order(DEPTH):
        model_state["model." + on] = golden[o2h[on]].clone()
    with_metadata(model_state, "model.")
    params = [torch.nn.Parameter(t.clone()) for t in model_state.values()]
    opt = torch.optim.SGD(params, lr=0.005, momentum=0.9, weight_decay=1e-4, nesterov=True)
    gen = torch.Generator().manual_seed(1234)
    for p in params:
        p.grad = 0.01 * torch.randn(p.shape, generator=gen)
    opt.step()
    ckpt = {"epoch": 3, "model_state": model_state, "optimizer_state": opt.state_dict(),
            "cfg": yaml_cfg(3, 16, 5, 0.005), "extra": UnknownConfig()}
    torch.save(ckpt, path("orig.pyth"))

    # 3. Awkward storage layouts.
    tricky = collections.OrderedDict()
    for n in names:
        tricky["module." + n] = golden[n].clone()
    fc1 = "timesformer.encoder.layer.0.intermediate.dense.weight"
    tricky["module." + fc1] = golden[fc1].t().contiguous().t()
    qw = "timesformer.encoder.layer.0.attention.attention.qkv.weight"
    qb = "timesformer.encoder.layer.0.attention.attention.qkv.bias"
    flat = torch.cat([golden[qw].reshape(-1), golden[qb]])
    tricky["module." + qw] = flat[:golden[qw].numel()].view(golden[qw].shape)
    tricky["module." + qb] = flat[golden[qw].numel():]
    big = torch.full((8, 30), float("nan"))
    big[1:6, 3:27] = golden["classifier.weight"]
    tricky["module.classifier.weight"] = big[1:6, 3:27]
    pad = torch.full((64,), float("nan"))
    pad[17:41] = golden["timesformer.layernorm.bias"]
    tricky["module.timesformer.layernorm.bias"] = pad[17:41]
    pw = "timesformer.embeddings.patch_embeddings.projection.weight"
    tricky["module." + pw] = golden[pw].contiguous(memory_format=torch.channels_last)
    torch.save({"state_dict": tricky}, path("tricky.pth"))

    # 4. Other dtypes.
    for folder, conv in (("hf_f16", torch.Tensor.half), ("hf_bf16", torch.Tensor.bfloat16),
                         ("hf_f64", torch.Tensor.double)):
        write_text(folder + "/config.json", cfg_text)
        torch.save(hf_state(golden, conv), path(folder, "pytorch_model.bin"))
    write_safetensors(path("expect_f16.safetensors"),
                      {n: golden[n].half().float() for n in names}, gmeta)
    write_safetensors(path("expect_bf16.safetensors"),
                      {n: golden[n].bfloat16().float() for n in names}, gmeta)

    # 5. Two shards and an index, as save_pretrained writes them (plain dicts).
    write_text("sharded/config.json", cfg_text)
    total = sum(golden[n].numel() * 4 for n in names)
    shard_names = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    shards = [{}, {}]
    acc = 0
    for n in names:
        k = 0 if acc < total // 2 else 1
        shards[k][n] = golden[n].clone()
        acc += golden[n].numel() * 4
    weight_map = {}
    for k in range(2):
        torch.save(shards[k], path("sharded", shard_names[k]))
        for n in shards[k]:
            weight_map[n] = shard_names[k]
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    write_text("sharded/pytorch_model.bin.index.json",
               json.dumps(index, indent=2, sort_keys=True) + "\n")

    # 6. Pre-1.6 format.
    save_legacy(hf_state(golden), path("legacy.bin"))

    # 7. Malicious pickles (pickling only stores a reference to the callable).
    # To keep them small they hold only the embeddings and the head: real tensors first,
    # then the trap as the last value.
    keep = [n for n in names if not n.startswith("timesformer.encoder.")]
    for fname, evil in (("evil_system.bin", EvilSystem()), ("evil_eval.bin", EvilEval())):
        sd = collections.OrderedDict((n, golden[n].clone()) for n in keep)
        sd["classifier.bias"] = evil
        torch.save(sd, path(fname))

    # 8. A model whose head count must be inferred.
    d64 = make_d64()
    ms = collections.OrderedDict(("model." + k, v) for k, v in d64.items())
    with_metadata(ms, "model.")
    torch.save({"epoch": 1, "model_state": ms, "cfg": yaml_cfg(2, 16, 3, 0.005)},
               path("orig_d64.pyth"))
    d64_map = orig_to_hf_map(1)
    d64_cfg = {"img_size": 16, "patch_size": 8, "in_chans": 3, "num_frames": 2,
               "embed_dim": 64, "depth": 1, "num_heads": 1, "mlp_ratio": 2.0,
               "num_classes": 3, "attention_type": "divided_space_time", "ln_eps": 1e-06,
               "qkv_bias": True}
    write_safetensors(path("orig_d64_expect.safetensors"),
                      {d64_map[k]: v for k, v in d64.items()},
                      {"config": json.dumps(d64_cfg)})
    return golden


# --------------------------------------------------------------------------- checks


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def check(golden):
    names = hf_order(DEPTH)
    L = lambda rel: torch.load(path(rel), map_location="cpu")  # noqa: E731

    sd = L("hf_bin/pytorch_model.bin")
    assert list(sd) == names and all(same(sd[n], golden[n]) for n in names)
    assert "" in sd._metadata
    cfg = json.load(open(path("hf_bin/config.json"), encoding="utf-8"))
    assert cfg["id2label"]["1"] == "caf\u00e9" and cfg["id2label"]["3"].endswith("\U0001F3C4")

    ck = L("orig.pyth")
    o2h = orig_to_hf_map(DEPTH)
    ms = ck["model_state"]
    assert len(ms) == len(names)
    for k, v in ms.items():
        assert same(v, golden[o2h[k[len("model."):]]]), k
    st = ck["optimizer_state"]
    assert len(st["state"]) == len(names) and "momentum_buffer" in st["state"][0]
    assert st["param_groups"][0]["nesterov"] is True
    assert type(ck["extra"]).__name__ == "UnknownConfig" and ck["epoch"] == 3

    tr = L("tricky.pth")["state_dict"]
    assert len(tr) == len(names)
    for n in names:
        assert same(tr["module." + n].contiguous(), golden[n]), n
    fc1 = tr["module.timesformer.encoder.layer.0.intermediate.dense.weight"]
    qw = tr["module.timesformer.encoder.layer.0.attention.attention.qkv.weight"]
    qb = tr["module.timesformer.encoder.layer.0.attention.attention.qkv.bias"]
    cw = tr["module.classifier.weight"]
    lb = tr["module.timesformer.layernorm.bias"]
    pw = tr["module.timesformer.embeddings.patch_embeddings.projection.weight"]
    print("tricky.pth after torch.load:")
    for label, t in (("layer.0 fc1 weight", fc1), ("layer.0 qkv weight", qw),
                     ("layer.0 qkv bias", qb), ("classifier.weight", cw),
                     ("layernorm.bias", lb), ("patch proj weight", pw)):
        print("  %-20s shape %-16s stride %-16s offset %5d contiguous %-5s storage %d B"
              % (label, tuple(t.shape), t.stride(), t.storage_offset(), t.is_contiguous(),
                 t.storage().nbytes()))
    assert fc1.stride() == (1, 48) and not fc1.is_contiguous()
    assert qw.storage().data_ptr() == qb.storage().data_ptr()
    assert qw.storage_offset() == 0 and qb.storage_offset() == 72 * 24
    assert qb.storage().size() == 72 * 24 + 72
    assert cw.stride() == (30, 1) and cw.storage_offset() == 33 and cw.storage().size() == 240
    assert lb.storage_offset() == 17 and lb.storage().size() == 64
    assert pw.stride() == (48, 1, 12, 3)
    print("  qkv weight and bias share one storage:",
          qw.storage().data_ptr() == qb.storage().data_ptr())

    exp = {"hf_f16": (torch.float16, read_safetensors(path("expect_f16.safetensors"))[0]),
           "hf_bf16": (torch.bfloat16, read_safetensors(path("expect_bf16.safetensors"))[0]),
           "hf_f64": (torch.float64, golden)}
    for folder, (dt, ref) in exp.items():
        sd = L(folder + "/pytorch_model.bin")
        assert list(sd) == names
        for n in names:
            assert sd[n].dtype == dt and same(sd[n].float(), ref[n]), (folder, n)
    nf16 = sum(int((golden[n] != exp["hf_f16"][1][n]).sum()) for n in names)
    nbf16 = sum(int((golden[n] != exp["hf_bf16"][1][n]).sum()) for n in names)
    print("values changed by rounding: f16 %d, bf16 %d of %d"
          % (nf16, nbf16, sum(golden[n].numel() for n in names)))

    index = json.load(open(path("sharded/pytorch_model.bin.index.json")))
    got = {}
    for shard in sorted(set(index["weight_map"].values())):
        part = L("sharded/" + shard)
        assert type(part) is dict
        for n, t in part.items():
            assert index["weight_map"][n] == shard
            got[n] = t
    assert sorted(got) == sorted(names) and all(same(got[n], golden[n]) for n in names)
    assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in got.values())

    lg = L("legacy.bin")
    assert list(lg) == names and all(same(lg[n], golden[n]) for n in names)
    assert not zipfile.is_zipfile(path("legacy.bin"))

    for fname, want in (("evil_system.bin", ("posix", "system")),
                        ("evil_eval.bin", ("__builtin__", "eval"))):
        assert want in globals_of(pickle_bytes(fname)), fname   # inspected, never loaded

    d = L("orig_d64.pyth")
    ref, meta = read_safetensors(path("orig_d64_expect.safetensors"))
    m = orig_to_hf_map(1)
    assert len(d["model_state"]) == len(ref)
    for k, v in d["model_state"].items():
        assert same(v, ref[m[k[len("model."):]]]), k
    assert json.loads(meta["config"])["embed_dim"] == 64
    print("all checks passed")


def pickle_bytes(rel):
    with zipfile.ZipFile(path(rel)) as z:
        (name,) = [n for n in z.namelist() if n.endswith("/data.pkl")]
        return z.read(name)


def globals_of(data):
    """GLOBAL (module, name) pairs in a pickle, read with pickletools (no execution)."""
    out = []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            out.append(tuple(arg.split(" ", 1)))
    return out


PICKLED = ["hf_bin/pytorch_model.bin", "orig.pyth", "tricky.pth", "hf_f16/pytorch_model.bin",
           "hf_bf16/pytorch_model.bin", "hf_f64/pytorch_model.bin",
           "sharded/pytorch_model-00001-of-00002.bin",
           "sharded/pytorch_model-00002-of-00002.bin", "evil_system.bin", "evil_eval.bin",
           "orig_d64.pyth"]


def dump():
    with zipfile.ZipFile(path("hf_bin/pytorch_model.bin")) as z:
        print("hf_bin/pytorch_model.bin zip entries (name, size, compression method):")
        for i in z.infolist():
            print("  %-34s %7d  method %d" % (i.filename, i.file_size, i.compress_type))
        data = z.read("pytorch_model/data.pkl")
        print("  version =", z.read("pytorch_model/version"))
    print("pickletools.dis of its data.pkl, first 60 lines:")
    text = io.StringIO()
    pickletools.dis(data, out=text)
    print("\n".join(text.getvalue().splitlines()[:60]))
    print("GLOBALs in orig.pyth data.pkl:")
    for g in sorted(set(globals_of(pickle_bytes("orig.pyth")))):
        print("  %s %s" % g)
    allg = set()
    allops = set()
    for rel in PICKLED:
        data = pickle_bytes(rel)
        allg.update(globals_of(data))
        allops.update(op.name for op, _, _ in pickletools.genops(data))
    with open(path("legacy.bin"), "rb") as f:
        blob = f.read()
    pos = 0
    for _ in range(5):  # magic, protocol version, sys_info, the object, the storage keys
        for op, arg, p in pickletools.genops(blob[pos:]):
            allops.add(op.name)
            if op.name == "GLOBAL":
                allg.add(tuple(arg.split(" ", 1)))
            if op.name == "STOP":
                pos += p + 1
                break
    print("all GLOBALs (zip pickles and legacy.bin):")
    for g in sorted(allg):
        print("  %s %s" % g)
    print("all opcodes:", " ".join(sorted(allops)))


def main():
    golden = build()
    check(golden)
    if "--dump" in sys.argv[1:]:
        dump()
    total = 0
    for root, _, files in os.walk(HERE):
        for f in files:
            if f != "make_fixtures.py" and "__pycache__" not in root:
                total += os.path.getsize(os.path.join(root, f))
    print("fixtures: %d bytes" % total)


if __name__ == "__main__":
    main()
