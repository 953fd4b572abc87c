"""The PyTorch + transformers side of `lcl bench`: one benchmark item per process, the same
shapes as the Rust side (src/bench/), random weights, no autograd except in the training step.

    python bench_torch.py --item NAME --threads N [--device cpu|cuda] [--min-runs 3] [--min-seconds 2]

Prints one JSON object: {"item", "times_s", "median_s", "peak_rss_mib", "peak_device_mib",
"work"}. Run through scripts/bench-torch.sh, which builds the virtual environment.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

if __name__ == "__main__":
    # OpenBLAS reads its thread count when it loads: before torch is imported.
    threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    os.environ.setdefault("OPENBLAS_NUM_THREADS", threads)

import torch  # noqa: E402
from transformers import (  # noqa: E402
    CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM, LlamaModel)

# Shapes shared with src/bench/shapes.rs.
MATMUL_SIZE = 4096
EPISODE_TOKENS = 4900
TINY_BATCH = 4
TINY_IMAGES = 17
TINY_TEXT_PER_IMAGE = 10
TINY_ANSWER = 12
TINY_QUERIES = 8


def llama_7b(layers, vocab=256):
    return LlamaConfig(vocab_size=vocab, hidden_size=4096, intermediate_size=11008,
                       num_hidden_layers=layers, num_attention_heads=32, rms_norm_eps=1e-6,
                       max_position_embeddings=8192)


def cache_length(past):
    """Tokens a KV cache holds: transformers 5's Cache objects or 4.x's tuples."""
    if hasattr(past, "get_seq_length"):
        return past.get_seq_length()
    return past[0][0].shape[2]


def repeat_cache(past, n):
    """A one-row cache repeated for `n` rows (in place for a Cache object)."""
    if hasattr(past, "batch_repeat_interleave"):
        past.batch_repeat_interleave(n)
        return past
    return tuple((k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in past)


def timed(fn, sync, min_runs, min_seconds):
    fn()  # warm-up
    sync()
    times = []
    started = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50:
            break
    return times


def item_matmul(device, dtype):
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device, dtype=dtype)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device, dtype=dtype)
    return (lambda: a @ b), 2 * MATMUL_SIZE ** 3


def item_clip(batch):
    def make(device, dtype):
        model = CLIPVisionModel(CLIPVisionConfig(hidden_size=1024, intermediate_size=4096,
                                                 num_hidden_layers=24, num_attention_heads=16,
                                                 image_size=224, patch_size=14,
                                                 projection_dim=768))
        model = model.to(device=device, dtype=dtype).eval()
        pixels = torch.randn(batch, 3, 224, 224, device=device, dtype=dtype)

        def run():
            out = model(pixel_values=pixels, output_hidden_states=True)
            return out.hidden_states[-2][:, 1:]
        return run, batch
    return make


def item_llama_prefill(device, dtype):
    model = LlamaModel(llama_7b(1)).to(device=device, dtype=dtype).eval()
    embeds = torch.randn(1, EPISODE_TOKENS, 4096, device=device, dtype=dtype) * 0.02
    return (lambda: model(inputs_embeds=embeds, use_cache=True)), EPISODE_TOKENS


def item_llama_decode(device, dtype):
    model = LlamaModel(llama_7b(1)).to(device=device, dtype=dtype).eval()
    embeds = torch.randn(1, EPISODE_TOKENS, 4096, device=device, dtype=dtype) * 0.02
    past = model(inputs_embeds=embeds, use_cache=True).past_key_values
    step = torch.randn(1, 1, 4096, device=device, dtype=dtype) * 0.02
    state = {"past": past}

    def run():
        # Successive steps on one cache, as generation runs them (as the Rust side).
        cached = cache_length(state["past"])
        mask = torch.ones(1, cached + 1, device=device, dtype=torch.long)
        out = model(inputs_embeds=step, past_key_values=state["past"], attention_mask=mask,
                    use_cache=True)
        state["past"] = out.past_key_values
        return out
    return run, 1


def item_llama_7b_prefill(device, dtype):
    model = LlamaModel(llama_7b(32)).to(device=device, dtype=dtype).eval()
    embeds = torch.randn(1, EPISODE_TOKENS, 4096, device=device, dtype=dtype) * 0.02
    return (lambda: model(inputs_embeds=embeds, use_cache=True)), EPISODE_TOKENS


def tiny_batch(device, dtype, patches, im_start, im_patch, im_end, vocab):
    """The synthetic training batch of src/bench/shapes.rs: per row 17 image blocks each
    followed by 10 text ids, then the answer (12 ids, supervised)."""
    rows = []
    for r in range(TINY_BATCH):
        ids = []
        for i in range(TINY_IMAGES):
            ids += [im_start] + [im_patch] * patches + [im_end]
            ids += [3 + (r * 31 + i * 7 + k) % (im_start - 3) for k in range(TINY_TEXT_PER_IMAGE)]
        ids += [3 + (r * 13 + k * 5) % (im_start - 3) for k in range(TINY_ANSWER)]
        rows.append(ids)
    ids = torch.tensor(rows, device=device)
    labels = torch.full_like(ids, -100)
    labels[:, -TINY_ANSWER:] = ids[:, -TINY_ANSWER:]
    pixels = torch.randn(TINY_BATCH * TINY_IMAGES, 3, 64, 64, device=device, dtype=dtype)
    return ids, labels, pixels


def tiny_model(device, dtype):
    """The tiny default model's shapes (configs/mini/{clip,llama}.json), random weights."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", "mini")
    with open(os.path.join(root, "clip.json")) as f:
        clip = json.load(f)["vision_config"]
    with open(os.path.join(root, "llama.json")) as f:
        llama = json.load(f)
    vision = CLIPVisionModel(CLIPVisionConfig(**clip))
    vision = vision.to(device=device, dtype=dtype).eval().requires_grad_(False)
    llm = LlamaForCausalLM(LlamaConfig(**llama)).to(device=device, dtype=dtype)
    projector = torch.nn.Linear(clip["hidden_size"], llama["hidden_size"])
    return vision, llm, projector.to(device=device, dtype=dtype)


def item_tiny_train(device, dtype):
    vision, llm, projector = tiny_model(device, dtype)
    llm.train()
    width = llm.config.hidden_size
    params = list(llm.parameters()) + list(projector.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    im_start, im_patch, im_end = 513, 512, 514
    ids, labels, pixels = tiny_batch(device, dtype, 16, im_start, im_patch, im_end, 515)
    patch_mask = ids == im_patch

    def step():
        with torch.no_grad():
            features = vision(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
        embeds = llm.model.embed_tokens(ids)
        embeds = embeds.masked_scatter(patch_mask.unsqueeze(-1),
                                       projector(features).reshape(-1, width))
        loss = llm(inputs_embeds=embeds, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step, TINY_BATCH


def tiny_support(patches, im_patch):
    ids = []
    for i in range(TINY_IMAGES - 1):
        ids += [im_patch + 1] + [im_patch] * patches + [im_patch + 2]
        ids += [3 + (i * 7 + k) % 500 for k in range(TINY_TEXT_PER_IMAGE)]
    return ids


def tiny_query(q, patches, im_patch):
    ids = [im_patch + 1] + [im_patch] * patches + [im_patch + 2]
    return ids + [3 + (q * 11 + k) % 500 for k in range(TINY_TEXT_PER_IMAGE)]


def item_tiny_generate(reuse):
    """8 queries after one 16-image support set, 12 greedy tokens each (no end token), with
    transformers' KV cache: the whole episodes in one batch, or (reuse) the support set
    prefilled once and its cache expanded to the 8 queries."""
    def make(device, dtype):
        vision, llm, projector = tiny_model(device, dtype)
        llm.eval()
        side, patches, im_patch = 64, 16, 512
        support_pixels = torch.randn(TINY_IMAGES - 1, 3, side, side, device=device, dtype=dtype)
        query_pixels = torch.randn(TINY_QUERIES, 3, side, side, device=device, dtype=dtype)
        support = torch.tensor(tiny_support(patches, im_patch), device=device)
        queries = torch.tensor([tiny_query(q, patches, im_patch) for q in range(TINY_QUERIES)],
                               device=device)

        def embed(ids, pixels):
            features = vision(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
            embeds = llm.model.embed_tokens(ids)
            return embeds.masked_scatter((ids == im_patch).unsqueeze(-1),
                                         projector(features[:, 1:]).reshape(-1, embeds.shape[-1]))

        def decode(out, past_len):
            tokens = out.logits[:, -1].argmax(-1, keepdim=True)
            past = out.past_key_values
            for step in range(TINY_ANSWER - 1):
                mask = torch.ones(TINY_QUERIES, past_len + step + 1, device=device, dtype=torch.long)
                out = llm(input_ids=tokens, past_key_values=past, attention_mask=mask, use_cache=True)
                past = out.past_key_values
                tokens = out.logits[:, -1].argmax(-1, keepdim=True)

        def run():
            if reuse:
                prefix = llm(inputs_embeds=embed(support[None], support_pixels), use_cache=True)
                past = repeat_cache(prefix.past_key_values, TINY_QUERIES)
                length = support.shape[0] + queries.shape[1]
                mask = torch.ones(TINY_QUERIES, length, device=device, dtype=torch.long)
                out = llm(inputs_embeds=embed(queries, query_pixels), past_key_values=past,
                          attention_mask=mask, use_cache=True)
            else:
                ids = torch.cat([support[None].expand(TINY_QUERIES, -1), queries], 1)
                pixels = torch.cat([torch.cat([support_pixels, query_pixels[q:q + 1]])
                                    for q in range(TINY_QUERIES)])
                out = llm(inputs_embeds=embed(ids, pixels), use_cache=True)
                length = ids.shape[1]
            decode(out, length)
        return run, TINY_QUERIES
    return make


ITEMS = {
    "matmul": item_matmul,
    "clip-b1": item_clip(1),
    "clip-b16": item_clip(16),
    "llama-layer-prefill": item_llama_prefill,
    "llama-layer-decode": item_llama_decode,
    "llama-7b-prefill": item_llama_7b_prefill,
    "tiny-train-step": item_tiny_train,
    "tiny-generate": item_tiny_generate(False),
    "tiny-generate-reuse": item_tiny_generate(True),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--item", required=True, choices=sorted(ITEMS))
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min-runs", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    make = ITEMS[args.item]
    if args.item == "tiny-train-step":
        run, work = make(device, dtype)
        times = timed(run, sync, args.min_runs, args.min_seconds)
    else:
        with torch.inference_mode():
            run, work = make(device, dtype)
            times = timed(run, sync, args.min_runs, args.min_seconds)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump({
        "item": args.item,
        "times_s": times,
        "median_s": statistics.median(times),
        "peak_rss_mib": peak_rss,
        "peak_device_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "work": work,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()
