"""Are two ganaug runs' checkpoints the same weights? Prints, per state dict, the tensors compared and the largest difference."""

import sys

import torch


def tensors(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from tensors(v, f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from tensors(v, f"{prefix}/{i}")


a, b = (torch.load(p, map_location="cpu", weights_only=False) for p in sys.argv[1:3])
print("top-level keys:", sorted(a) if isinstance(a, dict) else type(a))
for key in ("G", "D", "G_ema", "opt_g", "opt_d"):
    if isinstance(a, dict) and key in a:
        ta, tb = dict(tensors(a[key])), dict(tensors(b[key]))
        same_names = sorted(ta) == sorted(tb)
        worst = max((float((ta[k].double() - tb[k].double()).abs().max()) for k in ta if ta[k].numel()), default=0.0)
        equal = same_names and all(torch.equal(ta[k], tb[k]) for k in ta)
        print(f"{key}: {len(ta)} tensors, same names {same_names}, bitwise equal {equal}, max |diff| {worst:.3g}")
