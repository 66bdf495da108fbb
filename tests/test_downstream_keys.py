"""Cache keys stay what they were: every GAN and classifier the committed results came from is found again in
its cache after ganaug changes (options added since stay out of a key at their default, options removed since
come back at the value every cached GAN had, a renamed option keeps its old name in the key).

The keys below were computed by the benchmark as it was when the committed figures were made."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from benchmarks import downstream as lab
from ganaug.downstream import PROFILES, Data, config_key, gan_config, gan_dir
from ganaug.downstream.cells import cell_config

GANS = {
    "gan/smoke/5": "5_s1_5c6d5c179db6",
    "gan/smoke/0": "full_s1_ed411b3ba634",
    "poolgan/smoke": "10_s0_748ccd9efbd5",
    "gan/cpu/10": "10_s1_cb94a9d0d070",
    "gan/cpu/0": "full_s1_291337efde32",
    "poolgan/cpu": "10_s0_bdff3c5abe36",
    "gan/cpu-fashion/10": "10_s1_b12a65932b0d",
    "gan/cpu-fashion/0": "full_s1_1e441a4ea100",
    "poolgan/cpu-fashion": "10_s0_207428e0ccd5",
    "gan/full/10": "10_s1_c4f6ed14c499",
    "gan/full/0": "full_s1_ab3816b810cd",
    "poolgan/full": "10_s0_530c7e94ebe5",
}
#: Per profile, the keys of cells (a)-(e) at budget 10 and seed 2 as the profile, its smooth-share-10 probe and its
#: deform probe give them (a GAN named fake_run), then the pool's (p) and (q).
CELLS = {
    "smoke": [
        "bee22eb2ffad",
        "bee22eb2ffad",
        "bee22eb2ffad",
        "9aad48424d73",
        "b3a449a4291b",
        "0781a30a7a92",
        "cc6ce71989dd",
        "cc6ce71989dd",
        "cc6ce71989dd",
        "4b2bdb82a683",
        "a72651f48e2d",
        "523d3a2971d1",
        "60fe325f98e7",
        "4746aee10baa",
        "d9ddaed778a5",
        "d23a7bb99b66",
        "c8fc9a6d9112",
    ],
    "cpu": [
        "edf0070c570e",
        "edf0070c570e",
        "edf0070c570e",
        "c5f3a58ed8a8",
        "ef49939dea5a",
        "5bc9b92efec6",
        "13e4cbb7ee41",
        "13e4cbb7ee41",
        "13e4cbb7ee41",
        "9fde0f6f8f62",
        "cf178f60c377",
        "b521a9cba979",
        "f3eebdc30833",
        "525363621a2d",
        "792387784d8f",
        "1485e379faa7",
        "174cafa752df",
    ],
    "cpu-fashion": [
        "2bd60670dc51",
        "2bd60670dc51",
        "2bd60670dc51",
        "9c75dc6383fa",
        "413d5ffb228b",
        "7e022cc8ee48",
        "e610e94a1001",
        "e610e94a1001",
        "e610e94a1001",
        "07806b47262e",
        "1fb90a413c4f",
        "1d4f4a308bef",
        "1970959dfc69",
        "18f8a66aaa97",
        "c3db3714b963",
        "f35b93222485",
        "269c3047a35c",
    ],
    "full": [
        "e1717746b5fb",
        "e1717746b5fb",
        "e1717746b5fb",
        "9773aa4ab4a8",
        "249a4a85fe5f",
        "0d40f731e487",
        "31ecbef624a9",
        "31ecbef624a9",
        "31ecbef624a9",
        "aa16683437e8",
        "499cd4ed0b9b",
        "f3536f90113f",
        "4d15e05a58fd",
        "66aace37e510",
        "901dac7ed008",
        "6a0f9e113dd8",
        "ee7ee5d39c5e",
    ],
}


@pytest.mark.parametrize("name", list(PROFILES))
def test_gan_keys_of_every_profile_are_those_of_the_committed_caches(name):
    p, cache = PROFILES[name], Path("cache")
    for budget in (p.budgets[0], 0):
        steps = None if budget else p.cas_gan_steps
        cfg = gan_config(p, budget, 1, n_images=100 if budget else 60000, data_root="X", device="cpu", steps=steps)
        assert gan_dir(cfg, cache).name == GANS[f"gan/{name}/{budget}"]
    pooled = dataclasses.replace(
        gan_config(p, 10, 0, n_images=2445, data_root="X", device="cpu"),
        pseudo_label=p.pool_threshold,
        augment_real=False,
    )
    assert gan_dir(pooled, cache).name == GANS[f"poolgan/{name}"]


@pytest.mark.parametrize("name", list(PROFILES))
def test_cell_keys_of_every_profile_are_those_of_the_committed_caches(name):
    p = lab.PROFILES[name]
    data = Data(None, None, None, None, [str(i) for i in range(10)])
    gan = Path("cache") / "gan" / "fake_run"
    keys = []
    for condition in "abcde":
        for q in (p, lab.probe_profile(p, "smooth-share-10"), lab.probe_profile(p, "deform")):
            cfg = cell_config(q, data, budget=10, seed=2, condition=condition, amount=500, gan_run=gan)
            keys.append(config_key(cfg))
    for condition in "pq":
        amount = 500 if condition == "q" else 0
        keys.append(
            config_key(cell_config(p, data, budget=10, seed=2, condition=condition, amount=amount, gan_run=gan))
        )
    assert keys == CELLS[name]


def test_an_image_folder_is_keyed_by_its_contents():
    from ganaug.downstream.profiles import for_dataset, with_augment

    q = with_augment(for_dataset(PROFILES["cpu"], "imagefolder"), "shift-flip")
    cfg = gan_config(q, 10, 0, n_images=30, data_root="X", device="cpu")
    one, other = gan_dir(cfg, Path("c"), "a" * 64), gan_dir(cfg, Path("c"), "b" * 64)
    assert one != other and one.name.startswith("10_s0_")
    cells = [
        config_key(
            cell_config(
                q,
                Data(None, None, None, None, ["x", "y"], ident),
                budget=10,
                seed=0,
                condition="a",
                amount=0,
                gan_run=None,
            )
        )
        for ident in ("a" * 64, "b" * 64)
    ]
    assert cells[0] != cells[1]
