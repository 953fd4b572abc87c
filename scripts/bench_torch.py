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


def llama_7b(layers, vocab=256):
    return LlamaConfig(vocab_size=vocab, hidden_size=4096, intermediate_size=11008,
                       num_hidden_layers=layers, num_attention_heads=32, rms_norm_eps=1e-6,
                       max_position_embeddings=8192)


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
    mask = torch.ones(1, EPISODE_TOKENS + 1, device=device, dtype=torch.long)
    return (lambda: model(inputs_embeds=step, past_key_values=past, attention_mask=mask,
                          use_cache=True)), 1


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


def item_tiny_train(device, dtype):
    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=128, intermediate_size=512,
                                              num_hidden_layers=4, num_attention_heads=4,
                                              image_size=64, patch_size=16))
    vision = vision.to(device=device, dtype=dtype).eval().requires_grad_(False)
    config = LlamaConfig(vocab_size=515, hidden_size=256, intermediate_size=688,
                         num_hidden_layers=4, num_attention_heads=4, rms_norm_eps=1e-6)
    llm = LlamaForCausalLM(config).to(device=device, dtype=dtype).train()
    projector = torch.nn.Linear(128, 256).to(device=device, dtype=dtype)
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
                                       projector(features).reshape(-1, 256))
        loss = llm(inputs_embeds=embeds, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step, TINY_BATCH


ITEMS = {
    "matmul": item_matmul,
    "clip-b1": item_clip(1),
    "clip-b16": item_clip(16),
    "llama-layer-prefill": item_llama_prefill,
    "llama-layer-decode": item_llama_decode,
    "llama-7b-prefill": item_llama_7b_prefill,
    "tiny-train-step": item_tiny_train,
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
