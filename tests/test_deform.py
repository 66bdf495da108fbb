"""The downstream benchmark's learned elastic deformation (benchmarks/downstream/deform.py): the warp's geometry, the field network's bounds, the pairs the critic sees, determinism, and
the benchmark's deform / elastic sources."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmarks import downstream
from ganaug.errors import InputError
from tests.test_downstream import TINY as PRODUCT_TINY

TINY = downstream.Profile.of(PRODUCT_TINY)  # with the lab's levers
DeformConfig, FieldNet, _pairs = downstream.deform.DeformConfig, downstream.deform.FieldNet, downstream.deform._pairs
deform, field_rms, warp = downstream.deform.deform, downstream.deform.field_rms, downstream.deform.warp
random_fields, train_deformer = downstream.deform.random_fields, downstream.deform.train_deformer
SMALL = DeformConfig(steps=6, batch=8, z_dim=4, width=4, grid=3, max_shift=2.0)


pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n=12, seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g) * 2 - 1, torch.arange(n) % 3


def test_warp_by_zero_is_the_identity_and_a_one_pixel_field_moves_content_one_pixel_back():
    x, _ = _images()
    assert torch.allclose(warp(x, torch.zeros(len(x), 2, 16, 16)), x, atol=1e-5)
    dot = -torch.ones(1, 1, 9, 9)
    dot[0, 0, 4, 5] = 1.0
    right = torch.zeros(1, 2, 9, 9)
    right[:, 0] = 1.0  # sample one column to the right: the content moves one column left
    moved = warp(dot, right)
    assert moved[0, 0, 4, 4] == pytest.approx(1.0, abs=1e-5) and moved[0, 0, 4, 5] == pytest.approx(-1.0, abs=1e-5)
    down = torch.zeros(1, 2, 9, 9)
    down[:, 1] = -2.0  # y: sample two rows up, the content moves two rows down
    assert warp(dot, down)[0, 0, 6, 5] == pytest.approx(1.0, abs=1e-5)
    far = torch.full((1, 2, 9, 9), 20.0)  # sampling outside the image gives background
    assert torch.equal(warp(dot, far), -torch.ones(1, 1, 9, 9))


def test_field_net_starts_at_the_identity_and_stays_within_max_shift():
    x, _ = _images(6)
    net = FieldNet(SMALL)
    z = torch.randn(6, SMALL.z_dim)
    assert torch.equal(net(x, z), torch.zeros(6, 2, 16, 16))
    torch.nn.init.normal_(net.head[-1].weight, std=1.0)
    f = net(x, z)
    assert f.shape == (6, 2, 16, 16) and f.abs().max() <= SMALL.max_shift and f.abs().max() > 0.1


def test_pairs_are_two_different_images_of_one_class_and_cover_every_ordered_pair():
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2, 2])
    i, j = _pairs(labels, 4000, torch.Generator().manual_seed(0))
    assert (labels[i] == labels[j]).all() and (i != j).all()
    expected = {(a, b) for a in range(9) for b in range(9) if a != b and labels[a] == labels[b]}
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected


def test_training_is_seeded_moves_the_images_and_needs_two_images_per_class():
    x, y = _images()
    a, b = train_deformer(x, y, SMALL), train_deformer(x, y, SMALL)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    c = train_deformer(x, y, dataclasses.replace(SMALL, seed=1))
    assert not torch.equal(a.head[-1].weight, c.head[-1].weight)
    assert field_rms(a, x, seed=0) > 0  # left the identity it started at
    with pytest.raises(InputError, match="at least 2 images"):
        train_deformer(x[:4], torch.tensor([0, 1, 1, 2]), SMALL)


def test_deform_rows_follow_their_source_image_whatever_the_batch():
    x, y = _images(5)
    net = train_deformer(x, torch.tensor([0, 0, 1, 1, 1]), SMALL)
    out, labels = deform(net, x, y, 3, seed=7, batch=4)
    assert out.shape == (15, 1, 16, 16) and out.min() >= -1 and out.max() <= 1
    assert labels.tolist() == y.repeat_interleave(3).tolist()
    assert torch.allclose(deform(net, x, y, 3, seed=7, batch=1000)[0], out, atol=1e-6)
    assert not torch.allclose(deform(net, x, y, 3, seed=8)[0], out)


def test_random_fields_are_bounded_smooth_and_scaled_to_the_asked_rms():
    f = random_fields(50, (16, 16), SMALL, seed=0)
    assert f.shape == (50, 2, 16, 16) and f.abs().max() < SMALL.max_shift
    assert (f[..., 1:] - f[..., :-1]).abs().max() < 2 * SMALL.max_shift / (SMALL.grid - 1)  # bilinear: no jumps
    g = random_fields(50, (16, 16), SMALL, seed=0, rms=0.3)
    assert float(g.pow(2).mean().sqrt()) == pytest.approx(0.3, rel=1e-4)
    assert torch.equal(random_fields(50, (16, 16), SMALL, seed=0), f)


def test_deform_config_refuses_nonsense():
    with pytest.raises(InputError, match="max_shift"):
        DeformConfig(max_shift=0)
    with pytest.raises(InputError, match="steps"):
        DeformConfig(steps=0)


# ---- the downstream benchmark's deform and elastic sources --------------------------------------


def test_deform_and_elastic_sources_warp_the_subset_with_its_labels_and_share_one_cached_deformer(tmp_path):
    p = dataclasses.replace(TINY, deform_steps=4)
    data = downstream.cells.load_data(p, None)
    subset, _ = downstream.cells.real_subset(data, 3, 0)
    logs: list[str] = []
    runs = {}
    for source in ("deform", "elastic"):
        q = dataclasses.replace(p, synthetic_source=source)
        info: dict = {}
        runs[source] = downstream.levers.deformed(
            q, subset, 5, budget=3, seed=0, cache=tmp_path, device="cpu", log=logs.append, info=info
        )
        assert info["deform_rms_px"] > 0
    assert len(logs) == 1 and len(list((tmp_path / "deform").iterdir())) == 1  # trained once, then reused
    for x, y in runs.values():
        assert x.shape == (50, 1, 28, 28) and torch.bincount(y).tolist() == [5] * 10
        assert x.min() >= -1 and x.max() <= 1
    assert not torch.allclose(runs["deform"][0], runs["elastic"][0])
    # Each item is a warp of a subset image of its own label: its nearest subset image has that label.
    x, y = runs["deform"]
    nearest = torch.cdist(x.flatten(1), subset[0].flatten(1)).argmin(1)
    assert (subset[1][nearest] == y).float().mean() > 0.9
    downstream.levers._DEFORMERS.clear()  # from the file this time: the same items
    again = downstream.levers.deformed(
        dataclasses.replace(p, synthetic_source="deform"),
        subset,
        5,
        budget=3,
        seed=0,
        cache=tmp_path,
        device="cpu",
        log=logs.append,
        info={},
    )
    assert torch.equal(again[0], x) and len(logs) == 1


def test_profile_refuses_an_unknown_synthetic_source():
    with pytest.raises(InputError, match="synthetic_source"):
        dataclasses.replace(TINY, synthetic_source="vae")


def test_deform_probes_run_end_to_end_and_a_changed_deformer_never_reuses_a_cell(tmp_path):
    base = dataclasses.replace(TINY, name="tiny-deform", cas_gan_steps=0, seeds=1, deform_steps=3)
    names = ["deform", "elastic-share-10"]
    kw = {"data_root": None, "cache": tmp_path / "cache", "log": lambda m: None}
    doc = downstream.probes.run_probes(base, names, out=tmp_path / "out", **kw)
    rows = {r["probe"]: r for r in doc["rows"]}
    assert list(rows) == names and all(0 <= rows[n]["accuracy"]["d"]["mean"] <= 1 for n in names)
    cells = {p.name for p in (tmp_path / "cache" / "cells").iterdir()}
    # The same probes from the cache: nothing trains again.
    again = downstream.probes.run_probes(base, names, out=tmp_path / "out2", **kw)
    means = [[r["accuracy"][c]["mean"] for c in "abcd"] for r in doc["rows"]]
    assert [[r["accuracy"][c]["mean"] for c in "abcd"] for r in again["rows"]] == means
    assert {p.name for p in (tmp_path / "cache" / "cells").iterdir()} == cells
    # Another deformer (no mode-seeking term): new (b) and (d) cells and a second deformer; (a) and (c) reused.
    other = dataclasses.replace(base, deform_diversity=0.0)
    downstream.probes.run_probes(other, names, out=tmp_path / "out3", **kw)
    new = {p.name for p in (tmp_path / "cache" / "cells").iterdir()} - cells
    assert len(new) == 2 * len(names)  # (b) and (d) of each probe, one seed
    assert len(list((tmp_path / "cache" / "deform").iterdir())) == 2


def test_a_file_where_the_cache_wants_a_folder_is_a_one_line_error_and_stays(tmp_path):
    (tmp_path / "deform").write_text("someone's notes\n")
    p = dataclasses.replace(TINY, deform_steps=2, synthetic_source="deform")
    data = downstream.cells.load_data(p, None)
    subset, _ = downstream.cells.real_subset(data, 3, 0)
    with pytest.raises(InputError, match="is a file, not a folder"):
        downstream.levers.deformed(
            p, subset, 5, budget=3, seed=7, cache=tmp_path, device="cpu", log=lambda m: None, info={}
        )
    assert (tmp_path / "deform").read_text() == "someone's notes\n"
