import math

import pytest
import torch

from minidl import data, hparams


def test_disk_shapes_dtypes_and_range():
    X, y = data.disk(1000, seed=0)
    assert X.shape == (1000, 2) and X.dtype == torch.float32
    assert y.shape == (1000,) and y.dtype == torch.int64
    assert X.min() >= 0 and X.max() <= 1
    assert set(y.unique().tolist()) == {0, 1}


def test_disk_label_is_strictly_inside_the_disk():
    X, y = data.disk(5000, seed=1)
    r = ((X - 0.5) ** 2).sum(1).sqrt()
    radius = 1 / math.sqrt(2 * math.pi)
    assert torch.equal(y == 1, r < radius)
    assert data.disk_label(torch.tensor([[0.5 + radius, 0.5]])).item() == 0  # boundary is outside


def test_disk_is_balanced_since_its_area_is_one_half():
    _, y = data.disk(20000, seed=2)
    assert y.float().mean().item() == pytest.approx(0.5, abs=0.015)


def test_same_seed_same_data_different_seed_different_data():
    assert torch.equal(data.disk(50, seed=3)[0], data.disk(50, seed=3)[0])
    assert not torch.equal(data.disk(50, seed=3)[0], data.disk(50, seed=4)[0])


CLASSIFIERS = [d for d in data.DATASETS if hparams.problem_of(d) == "classification"]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_data_set_is_in_the_unit_square_with_both_labels(name):
    X, y = data.make(name, 400, seed=0)
    assert X.shape == (400, 2) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert X.min() >= 0 and X.max() <= 1
    assert 0.2 < y.float().mean().item() < 0.8


def test_label_noise_flips_about_that_fraction_and_keeps_positions():
    X0, y0 = data.make("disk", 4000, seed=0)
    X1, y1 = data.make("disk", 4000, seed=0, noise=0.2)
    assert torch.equal(X0, X1)
    assert (y0 != y1).float().mean().item() == pytest.approx(0.2, abs=0.02)


def test_train_test_split_sizes_and_clean_test_labels():
    Xtr, ytr, Xte, yte = data.train_test("disk", 300, 200, seed=0, noise=0.3)
    assert Xtr.shape == (300, 2) and Xte.shape == (200, 2)
    assert torch.equal(yte, data.disk_label(Xte))
    assert not torch.equal(ytr, data.disk_label(Xtr))


def test_one_hot():
    out = data.one_hot(torch.tensor([0, 1, 1]))
    assert torch.equal(out, torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="labels"):
        data.one_hot(torch.tensor([0, 2]))
    with pytest.raises(TypeError):
        data.one_hot(torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("call,match", [(lambda: data.disk(0), "positive"),
                                        (lambda: data.disk(10, seed=-1), "seed"),
                                        (lambda: data.make("moons", 10), "moons"),
                                        (lambda: data.make("disk", 10, noise=0.9), "noise")])
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- point jitter

@pytest.mark.parametrize("name", list(data.DATASETS))
def test_jitter_moves_points_by_at_most_its_amount_and_keeps_them_in_the_square(name):
    X0, y0 = data.make(name, 2000, seed=5)
    X1, y1 = data.make(name, 2000, seed=5, jitter=0.1)
    moved = (X1 - X0).abs()
    assert moved.max().item() <= 0.1 + 1e-6
    assert moved.mean().item() > 0.02  # they did move: U(−0.1, 0.1) has mean |u| 0.05
    assert X1.min() >= 0 and X1.max() <= 1
    assert torch.equal(y0, y1)  # labels of the clean positions


def test_jittered_points_keep_the_label_of_where_they_were_drawn():
    Xtr, ytr, Xte, yte = data.train_test("disk", 1500, 1500, seed=0, jitter=0.2)
    clean_tr, _, clean_te, _ = data.train_test("disk", 1500, 1500, seed=0)
    assert torch.equal(ytr, data.disk_label(clean_tr)) and torch.equal(yte, data.disk_label(clean_te))
    # near the circle, a moved point may now lie on the other side: the rule is noisy
    assert not torch.equal(ytr, data.disk_label(Xtr))
    assert not torch.equal(Xte, clean_te)  # test points move too


def test_zero_jitter_is_the_old_data_exactly_and_jitter_is_seeded():
    for a, b in zip(data.train_test("spiral", 300, 200, seed=3, noise=0.1),
                    data.train_test("spiral", 300, 200, seed=3, noise=0.1, jitter=0.0)):
        assert torch.equal(a, b)
    assert torch.equal(data.make("xor", 300, seed=3, jitter=0.3)[0],
                       data.make("xor", 300, seed=3, jitter=0.3)[0])
    assert not torch.equal(data.make("xor", 300, seed=3, jitter=0.3)[0],
                           data.make("xor", 300, seed=4, jitter=0.3)[0])


def test_jitter_never_changes_which_points_are_drawn_nor_label_noise():
    # a stream of its own: the clean positions and the flipped labels are the same at any jitter
    X0, y0 = data.make("disk", 500, seed=1, noise=0.2)
    X1, y1 = data.make("disk", 500, seed=1, noise=0.2, jitter=0.05)
    assert torch.equal(y0, y1) and (X1 - X0).abs().max() <= 0.05 + 1e-6


@pytest.mark.parametrize("jitter", [-0.1, 0.6, float("nan")])
def test_bad_jitter_is_refused_naming_the_setting(jitter):
    with pytest.raises(ValueError, match="point jitter"):
        data.make("disk", 10, jitter=jitter)
