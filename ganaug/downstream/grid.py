"""The downstream benchmark's driver: every cell of a profile, trained or read from the cache, then the report."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganaug.config import TrainConfig
from ganaug.errors import InputError

from .cells import Data, gan_config, gan_dir, gan_quality, load_data, run_cell, train_gan
from .profiles import FULL, GENERATED, Profile, budget_name
from .report import plots, provenance, write_report
from .stats import aggregate, summary


def run(
    p: Profile,
    *,
    data_root: str | None,
    cache: Path,
    out: Path,
    device: str = "cpu",
    evaluator: str | None = None,
    full_gan: Path | None = None,
    report_only: bool = False,
    shard: tuple[int, int] = (0, 1),
    command: str = "",
    log=print,
    write: bool = True,
) -> dict[str, Any]:
    """Run (or resume, or with ``report_only`` only collect) every cell of ``p``; write the report.

    ``shard=(i, n)`` trains only the (budget, seed) units whose running index is i mod n (the last shard
    also the CAS GAN and its classifiers), so n processes sharing ``cache`` split the work; each shard only
    collects the rest from the cache and writes nothing to ``out`` (nor does ``write=False``: the caller
    reports, as :mod:`.probes` does). Once all have finished, an unsharded run
    finds everything cached (or trains what is missing) and writes the report.

    Raises:
        InputError: a bad ``shard``, a ``full_gan`` that is not a finished whole-split run, or no classifier
            run at all (e.g. ``report_only`` on an empty cache): a report of nothing never replaces one in ``out``.
    """
    index, shards = shard
    if not 0 <= index < shards:
        raise InputError(f"--shard {index}/{shards}: the index must be in 0..{shards - 1}")
    t0 = time.perf_counter()
    data = load_data(p, data_root)
    num_classes = len(data.classes)
    if report_only and not cache.is_dir():
        raise InputError(
            f"--report-only: no cache at {cache}, nothing to report; run without --report-only first, or give its --cache"
        )
    cache.mkdir(parents=True, exist_ok=True)
    cells, gans, honesty, quality = [], {}, [], {}
    grids: dict[str, Path] = {}  # grid name -> the samples.png copied into out as samples_<name>.png

    def cell(budget: int, seed: int, cond: str, amount: int, gan: Path | None, mine: bool) -> dict[str, Any] | None:
        return run_cell(
            p,
            data,
            cache,
            budget=budget,
            seed=seed,
            condition=cond,
            amount=amount,
            gan_run=gan,
            device=device,
            log=log,
            cached_only=report_only or not mine,
        )

    def gan_for(cfg: TrainConfig, what: str, mine: bool) -> Path | None:
        run_dir = gan_dir(cfg, cache, data.identity)
        if (run_dir / "summary.json").is_file() or report_only or not mine:
            return run_dir if (run_dir / "summary.json").is_file() else None
        log(f"GAN {what} ({cfg.epochs} epochs)")
        return train_gan(cfg, cache, data_id=data.identity)

    unit = 0
    for budget in p.budgets:
        n_images = len(data.train_labels) if budget == FULL else budget * num_classes
        for seed in range(p.seeds):
            mine = unit % shards == index
            unit += 1
            gan = None
            if set(p.conditions) & set(GENERATED):
                cfg = gan_config(p, budget, seed, n_images=n_images, data_root=data_root, device=device)
                gan = gan_for(cfg, f"budget={budget_name(budget)} seed={seed}", mine)
                if gan is not None:
                    gans[gan.name] = gan
                    if (q := gan_quality(gan, evaluator)) is not None:
                        quality[gan.name] = q
                    if seed == 0:
                        grids[budget_name(budget)] = gan / "samples.png"
            for cond in p.conditions:
                if cond in GENERATED and gan is None:
                    continue
                amounts = [p.synthetic_per_class if cond in GENERATED else 0]
                if cond == "b" and budget in p.sweep_budgets:
                    amounts += list(p.sweep)
                cells += [c for a in amounts if (c := cell(budget, seed, cond, a, gan, mine)) is not None]

    cas = None
    want_cas = bool(p.cas_gan_steps) and "e" in p.conditions  # CAS is condition (e) with the whole-split GAN
    if want_cas:
        if full_gan is None:
            cfg = gan_config(
                p, FULL, 0, n_images=len(data.train_labels), data_root=data_root, device=device, steps=p.cas_gan_steps
            )
            full_gan = gan_for(cfg, "on the whole training split, for CAS", index == shards - 1)
        else:
            check_full_gan(full_gan, p)
    if want_cas and full_gan is not None:
        cas_cells = [
            c
            for s in range(p.seeds)
            if (c := cell(FULL, s, "e", p.cas_per_class, full_gan, index == shards - 1)) is not None
        ]
        if cas_cells:
            steps = json.loads((full_gan / "summary.json").read_text())["steps"]
            cas = {
                "gan": str(full_gan),
                "gan_steps": steps,
                "synthetic_per_class": p.cas_per_class,
                "accuracy": summary([c["accuracy"] for c in cas_cells]),
                "values": [c["accuracy"] for c in cas_cells],
                "per_class": np.mean([c["per_class"] for c in cas_cells], axis=0).tolist(),
            }
            grids["cas"] = full_gan / "samples.png"
            if (q := gan_quality(full_gan, evaluator)) is not None:
                quality["cas:" + full_gan.name] = q

    if shards == 1 and not cells and cas is None:
        raise InputError(
            f"no finished classifier runs of profile {p.name!r} in {cache}: nothing to report, {out} left as it was; "
            + (
                "run without --report-only first, or give the --cache that holds them"
                if report_only
                else "check --conditions and --budgets"
            )
        )
    no_selection = (
        f"test split used only for the final evaluation: no early stopping, no selection, fixed {p.clf_steps} steps"
    )
    honesty.append((no_selection, True))
    checks = [c["honesty"]["gan_saw_only_the_subset"] for c in cells if "gan_saw_only_the_subset" in c["honesty"]]
    honesty.append(
        (
            f"every GAN trained on exactly its classifier's subset (indices sha256 equal in {len(checks)} cells)",
            all(checks),
        )
    )
    overlap = _shared_images(data)
    honesty.append((f"no test image is byte-identical to a training image ({overlap} found)", overlap == 0))
    if cas:
        honesty.append(("CAS GAN trained on the whole training split (per_class None), never on the test split", True))

    results = {
        **provenance(p, command, t0),
        "data": describe_data(p, data, data_root),
        "cells": len(cells),
        "gans": len(gans),
        "table": aggregate(p, cells),
        "cas": cas,
        "gan_quality": quality,
        "honesty": honesty,
        "grids": list(grids),
        "raw_cells": cells,
    }
    if shards > 1:
        log(f"shard {index}/{shards} done; once every shard has finished, run again without --shard for the report")
        return results
    if not write:
        return results
    out.mkdir(parents=True, exist_ok=True)
    for name, grid in grids.items():
        shutil.copyfile(grid, out / f"samples_{name}.png")
    plots(p, results["table"], data.classes, out)
    write_report(p, results, out)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return results


def describe_data(p: Profile, data: Data, data_root: str | None) -> dict[str, Any]:
    """What results.json and the report say of the data: the dataset, an image folder's path and identity, the
    classes and the size of each split."""
    return {
        "dataset": p.dataset,
        "root": str(data_root) if p.dataset == "imagefolder" else None,
        "sha256": data.identity,
        "classes": list(data.classes),
        "train": len(data.train_labels),
        "test": len(data.test_labels),
    }


def check_full_gan(full_gan: Path, p: Profile) -> None:
    """Raise :class:`InputError` unless ``full_gan`` is a finished ganaug run trained on the whole ``p.dataset``
    training split (what ``--full-gan`` must name; checked before any training)."""
    if not full_gan.is_dir():
        raise InputError(f"--full-gan {full_gan}: no such folder; give a finished `ganaug train` run folder")
    if not (full_gan / "summary.json").is_file():
        raise InputError(f"--full-gan {full_gan} is not a finished ganaug run folder (no summary.json)")
    try:
        data = json.loads((full_gan / "config.json").read_text())["data"]
        whole = data["per_class"] is None and data["dataset"] == p.dataset
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(
            f"--full-gan {full_gan}: its config.json is missing or unreadable ({type(e).__name__}); "
            "give a finished `ganaug train` run folder"
        ) from None
    if not whole:
        raise InputError(f"--full-gan {full_gan} was not trained on the whole {p.dataset} training split")


def _shared_images(data: Data) -> int:
    """How many test images also occur, byte for byte, in the training split."""
    train = {hashlib.sha1(x.numpy().tobytes()).digest() for x in data.train_images}
    test = ((data.test_images + 1) * 127.5).round().to(torch.uint8).squeeze(1)
    return sum(hashlib.sha1(x.numpy().tobytes()).digest() in train for x in test)
