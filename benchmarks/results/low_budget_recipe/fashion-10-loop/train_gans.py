"""Train the cpu-fashion 10/class GANs of seeds 4 and 3 into the benchmark cache (beside a probes run doing 1, 2)."""

from pathlib import Path

from benchmarks import downstream
from benchmarks.downstream.cells import gan_config, train_gan
from ganaug.threads import configure_torch

configure_torch(1)
p = downstream.PROFILES["cpu-fashion"]
for seed in (4, 3):
    cfg = gan_config(p, 10, seed, n_images=100, data_root="/work/shared/data", device="cpu")
    print(seed, train_gan(cfg, Path("/work/dcache/fashion")), flush=True)
