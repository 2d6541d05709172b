#!/usr/bin/env python3
"""Reference trace for truthprobe's parity check on real weights.

Runs a Hugging Face model (a text Llama / Mistral / Qwen2, or a llava-hf LLaVA-1.5) in float32 with eager attention
and writes the hooks truthprobe's `trace` writes, in its format: one float32 tensor per hook, named and shaped as in
truthprobe's hook table (batch axis dropped), metadata token_ids / positions / model / format (+ image, image_sha256,
image_aspect). Then `truthprobe trace-diff ours.safetensors hf.safetensors` prints max |diff| per hook.

    truthprobe trace MODEL --prompt "..." [--image cat.jpg] --hooks 'blocks.*.attn.hook_z,logits' --out ours.safetensors
    python tools/parity/hf_trace.py MODEL --like ours.safetensors --out hf.safetensors
    truthprobe trace-diff ours.safetensors hf.safetensors

--like takes the token ids (image tokens already expanded), image, aspect, positions and hook names from our trace,
so both runs see the same input. Needs torch, transformers (>= 4.47 for expanded LLaVA ids), safetensors, Pillow.
blocks.{l}.attn.hook_rot_q / hook_rot_k / hook_attn_scores, which transformers does not expose, are rebuilt from its
own pieces when asked for: the cos/sin its rotary module hands the layers and its modeling file's rotate_half on
hook_q / hook_k, then rot_q . rot_k * d_head^-0.5 (kv head h // (H / H_kv)) with -inf where the causal mask (and a
sliding window, where the config enables one) hides the key, as the eager attention computes it before its softmax.
"""
import argparse, fnmatch, hashlib, sys

import torch
import transformers
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file


def expand2square(img, background):
    """LLaVA's pad-to-square with the mean colour (the original code's image_aspect_ratio = "pad")."""
    w, h = img.size
    if w == h:
        return img
    s = max(w, h)
    square = Image.new(img.mode, (s, s), background)
    square.paste(img, ((s - w) // 2, (s - h) // 2))
    return square


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--like", help="our trace: token ids, image, aspect, positions and hooks are taken from it")
    ap.add_argument("--token-ids", help="comma-separated ids (LLaVA: with the image tokens expanded)")
    ap.add_argument("--hooks", help="comma-separated names or fnmatch patterns (default: those of --like)")
    ap.add_argument("--image")
    ap.add_argument("--image-aspect", choices=["crop", "pad"], default="crop")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    meta, wanted = {}, []
    if a.like:
        with safe_open(a.like, "pt") as f:
            meta, wanted = f.metadata() or {}, list(f.keys())
    if not (a.token_ids or "token_ids" in meta) or not (a.hooks or wanted):
        raise SystemExit("give --like OUR_TRACE, or --token-ids and --hooks")
    ids = [int(x) for x in (a.token_ids or meta["token_ids"]).split(",")]
    image_path = a.image or meta.get("image")
    aspect = meta.get("image_aspect", a.image_aspect) if a.like and not a.image else a.image_aspect
    positions = meta.get("positions", "all")
    patterns = a.hooks.split(",") if a.hooks else wanted

    config = transformers.AutoConfig.from_pretrained(a.model)
    llava = config.model_type == "llava"
    cls = transformers.LlavaForConditionalGeneration if llava else transformers.AutoModelForCausalLM
    model = cls.from_pretrained(a.model, torch_dtype=torch.float32, attn_implementation="eager").eval()
    text = config.text_config if llava else config
    H, Hkv = text.num_attention_heads, text.num_key_value_heads
    hd = getattr(text, "head_dim", None) or text.hidden_size // H

    acts = {}
    def keep(name, t):
        acts[name] = t.detach().float()[0]          # batch axis dropped

    hooks = []
    on = lambda module, fn: hooks.append(module.register_forward_hook(fn))
    pre = lambda module, fn: hooks.append(module.register_forward_pre_hook(fn, with_kwargs=True))
    layers = next(m for n, m in model.named_modules() if n.endswith("layers") and "vision" not in n and isinstance(m, torch.nn.ModuleList))
    for l, layer in enumerate(layers):
        b = f"blocks.{l}."
        pre(layer, lambda m, args, kw, b=b: keep(b + "hook_resid_pre", args[0] if args else kw["hidden_states"]))
        on(layer, lambda m, i, o, b=b: keep(b + "hook_resid_post", o[0] if isinstance(o, tuple) else o))
        at, mlp = layer.self_attn, layer.mlp
        for proj, name, heads in ((at.q_proj, "attn.hook_q", H), (at.k_proj, "attn.hook_k", Hkv), (at.v_proj, "attn.hook_v", Hkv)):
            on(proj, lambda m, i, o, n=b + name, h=heads: keep(n, o.view(1, -1, h, hd)))
        pre(at.o_proj, lambda m, args, kw, b=b: keep(b + "attn.hook_z", args[0].view(1, args[0].shape[1], H, hd)))
        on(at.o_proj, lambda m, i, o, b=b: keep(b + "hook_attn_out", o))
        on(mlp.gate_proj, lambda m, i, o, b=b: keep(b + "mlp.hook_pre", o))
        on(mlp.up_proj, lambda m, i, o, b=b: keep(b + "mlp.hook_pre_linear", o))
        pre(mlp.down_proj, lambda m, args, kw, b=b: keep(b + "mlp.hook_post", args[0]))
        on(mlp, lambda m, i, o, b=b: keep(b + "hook_mlp_out", o))
    # The cos/sin the layers get (one module for the whole model in transformers >= 4.47): kept whole, batch included.
    rotary = next((m for n, m in model.named_modules() if n.endswith("rotary_emb") and "vision" not in n), None)
    if rotary is not None:
        on(rotary, lambda m, i, o: acts.__setitem__("_rope", (o[0].detach().float(), o[1].detach().float())))

    inputs = {"input_ids": torch.tensor([ids])}
    if image_path:
        processor = transformers.AutoProcessor.from_pretrained(a.model)
        img = Image.open(image_path).convert("RGB")
        if aspect == "pad":
            img = expand2square(img, tuple(int(x * 255) for x in processor.image_processor.image_mean))
        inputs["pixel_values"] = processor.image_processor(img, return_tensors="pt")["pixel_values"]
        keep("vision.hook_pixel_values", inputs["pixel_values"])
        for l, layer in enumerate(model.vision_tower.vision_model.encoder.layers):
            on(layer, lambda m, i, o, l=l: keep(f"vision.blocks.{l}.hook_resid_post", o[0] if isinstance(o, tuple) else o))
        pre(model.multi_modal_projector, lambda m, args, kw: keep("vision.hook_features", args[0] if args else kw["image_features"]))
        on(model.multi_modal_projector, lambda m, i, o: keep("hook_image_features", o))
        meta_image = {"image": image_path, "image_aspect": aspect,
                      "image_sha256": hashlib.sha256(open(image_path, "rb").read()).hexdigest()}
    else:
        meta_image = {}

    with torch.no_grad():
        out = model(**inputs, output_attentions=True, use_cache=False)
    for h in hooks:
        h.remove()
    T = len(ids)
    for l in range(len(layers)):
        b = f"blocks.{l}."
        acts[b + "hook_resid_mid"] = acts[b + "hook_resid_pre"] + acts[b + "hook_attn_out"]
        acts[b + "attn.hook_pattern"] = out.attentions[l].float()[0]
    acts["hook_embed"] = acts["blocks.0.hook_resid_pre"]
    rope = acts.pop("_rope", None)
    rope_hooks = ("attn.hook_rot_q", "attn.hook_rot_k", "attn.hook_attn_scores")
    rotate_half = getattr(sys.modules[type(layers[0].self_attn).__module__], "rotate_half", None)
    window = getattr(text, "sliding_window", None) if getattr(text, "use_sliding_window", True) else None
    for l in range(len(layers)):
        b = f"blocks.{l}."
        if not any(fnmatch.fnmatchcase(b + n, p) for n in rope_hooks for p in patterns):
            continue
        if rope is None or rotate_half is None:
            raise SystemExit(f"{b}attn.hook_rot_q/rot_k/attn_scores: this model has no rotary_emb module or rotate_half to rebuild them from")
        cos, sin = rope[0][0].unsqueeze(1), rope[1][0].unsqueeze(1)          # [T, 1, d_head]
        q, k = acts[b + "attn.hook_q"], acts[b + "attn.hook_k"]                # [T, H, d_head], [T, H_kv, d_head]
        acts[b + "attn.hook_rot_q"] = q * cos + rotate_half(q) * sin
        acts[b + "attn.hook_rot_k"] = k * cos + rotate_half(k) * sin
        keys = acts[b + "attn.hook_rot_k"].repeat_interleave(H // Hkv, dim=1)
        scores = torch.einsum("thd,shd->hts", acts[b + "attn.hook_rot_q"], keys) * hd ** -0.5
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        hidden = (j > i) | ((j <= i - window) if window else torch.zeros_like(j > i))
        acts[b + "attn.hook_attn_scores"] = scores.masked_fill(hidden, float("-inf"))
    acts["logits"] = out.logits.float()[0]

    names = [n for n in acts if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    missing = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in acts)]
    if missing:
        raise SystemExit(f"no such hook in this run: {', '.join(missing)}")
    result = {}
    for n in names:
        t = acts[n]
        if positions != "all" and not n.startswith("vision.") and n != "hook_image_features":
            sel = [p if p >= 0 else T + p for p in map(int, positions.split(","))]
            t = t[:, sel] if n.endswith(("hook_pattern", "hook_attn_scores")) else t[sel]
        result[n] = t.contiguous()
    metadata = {"model": a.model, "format": f"transformers {transformers.__version__}",
                "token_ids": ",".join(map(str, ids)), "positions": positions, **meta_image}
    save_file(result, a.out, metadata=metadata)
    print(f"wrote {len(result)} tensors for {T} tokens to {a.out}")


if __name__ == "__main__":
    main()
