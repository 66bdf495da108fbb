"""Where a float16 generator's error comes from, on the CPU: which layers kept in float32 would meet 1e-3.

    OMP_NUM_THREADS=1 python benchmarks/fp16_parity.py runs/mnist            # a run folder or checkpoint
    OMP_NUM_THREADS=1 python benchmarks/fp16_parity.py runs/mnist --batch 4096 --seed 0

Float16 with float32 accumulation (what cuDNN and cuBLAS do for ONNX Runtime's CUDA fp16 kernels) is emulated
on the BatchNorm-folded generator in float32: the weights, inputs and outputs of the layers chosen to be float16
are rounded to float16; the others are left alone. The reference is the same folded generator in float32; each
line is the max and mean absolute difference of the images ([-1, 1]) over ``--batch`` random inputs
(standard-normal ``z``, uniform labels). The last lines round one tensor at a time around the big convolution
of the 7x7 stage (its input, its weights, its output), which bounds what any float16 split of that layer can do.
Writes nothing; prints the table.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from torch import nn

from ganaug.train.export import fold_for_inference, load_checkpoint_generator

BAR = 1e-3
LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)


def to_half_and_back(t: torch.Tensor) -> torch.Tensor:
    return t.half().float() if t.is_floating_point() else t


def emulated(folded: nn.Module, keep_fp32: set[str]) -> nn.Module:
    """A copy whose layers outside ``keep_fp32`` round their weights, inputs and outputs to float16."""
    model = copy.deepcopy(folded)
    for name, layer in model.named_modules():
        if isinstance(layer, LAYERS) and name not in keep_fp32:
            with torch.no_grad():
                for p in layer.parameters():
                    p.copy_(to_half_and_back(p))
            layer.register_forward_pre_hook(lambda _, args: tuple(to_half_and_back(a) for a in args))
            layer.register_forward_hook(lambda _, args, out: to_half_and_back(out))
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="Run folder or checkpoint.pt")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    generator, _ = load_checkpoint_generator(args.model)
    folded = fold_for_inference(generator)
    rng = np.random.default_rng(args.seed)
    z = torch.from_numpy(rng.standard_normal((args.batch, generator.config.z_dim), dtype=np.float32))
    labels = torch.from_numpy(rng.integers(0, generator.config.num_classes, args.batch))
    layers = [name for name, m in folded.named_modules() if isinstance(m, LAYERS)]
    first, body, last = "project.0", "up.0", layers[-1]
    with torch.no_grad():
        reference = folded(z, labels)
    print(f"{args.model}: batch {args.batch}; layers {layers}; bar {BAR:g}")
    print("| float32 kept | max abs diff | mean abs diff | bar |")
    print("|---|---:|---:|---|")
    variants = {
        "none (all float16)": set(),
        "embedding + first Linear": {"embed", first},
        "last layer (+ tanh)": {last},
        "embedding + first Linear + last layer": {"embed", first, last},
    }
    for label, keep in variants.items():
        with torch.no_grad():
            out = emulated(folded, keep)(z, labels)
            out = out if last in keep else to_half_and_back(out)  # tanh's output is float16 too
        err = (out - reference).abs()
        print(f"| {label} | {err.max():.3e} | {err.mean():.2e} | {'met' if err.max() <= BAR else 'NOT met'} |")
    print()
    print(f"Only one tensor of the 7x7 stage's convolution ({body}) rounded to float16, everything else float32:")
    print("| rounded | max abs diff | bar |")
    print("|---|---:|---|")
    for part in ("input", "weights", "output"):
        model = copy.deepcopy(folded)
        target = model.get_submodule(body)
        if part == "weights":
            with torch.no_grad():
                for p in target.parameters():
                    p.copy_(to_half_and_back(p))
        elif part == "input":
            target.register_forward_pre_hook(lambda _, args: tuple(to_half_and_back(a) for a in args))
        else:
            target.register_forward_hook(lambda _, args, out: to_half_and_back(out))
        with torch.no_grad():
            err = float((model(z, labels) - reference).abs().max())
        print(f"| {part} | {err:.3e} | {'met' if err <= BAR else 'NOT met'} |")


if __name__ == "__main__":
    main()
