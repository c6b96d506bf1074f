"""A synthetic, CIFAR-shaped data set for the training benchmarks (no download).

32×32×3 uint8 images in 10 classes: each class has a smooth colour template (random 4×4×3 pattern
scaled up to 32×32); an image is its class template, shifted by up to 3 pixels, plus noise. A CNN
learns it in a few epochs, so ``val_loss`` keeps improving for a while and early stopping does not
end a timed run early; the data is a stand-in for CIFAR-10's shape and dtype, not its difficulty.

Two files are written from the same images:

- ``reference.npz``: ``x_train`` (``n_train``) and ``x_test`` (``n_test``), what the hand-written
  scripts read; they train on ``x_train`` and validate on ``x_test`` every epoch, as the seed does.
- ``cnnspec.npz``: ``x_train`` = the same training images followed by the test images, and
  ``x_test`` = the test images. With ``data.validation_split = n_test / (n_train + n_test)`` cnnspec
  trains on ``n_train`` images and validates on ``n_test`` every epoch: the same work per epoch as
  the reference, with cnnspec's own (seeded, stratified) split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = 10


def images(n: int, rng: np.random.Generator, templates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (uint8, N×32×32×3) and their labels (int64)."""
    labels = rng.integers(0, CLASSES, size=n)
    base = templates[labels]
    shifts = rng.integers(-3, 4, size=(n, 2))
    shifted = np.empty_like(base)
    for i in range(n):
        shifted[i] = np.roll(base[i], tuple(shifts[i]), axis=(0, 1))
    noisy = shifted + rng.normal(0.0, 40.0, size=base.shape)
    return np.clip(noisy, 0, 255).astype("uint8"), labels.astype("int64")


def write(folder: Path, n_train: int = 10_000, n_test: int = 1_000, seed: int = 0) -> dict[str, object]:
    """Write ``reference.npz`` and ``cnnspec.npz`` into ``folder``; returns their paths and sizes."""
    from cnnspec.fileio import atomic_path

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 215, size=(CLASSES, 4, 4, 3))
    templates = np.kron(coarse, np.ones((1, 8, 8, 1)))
    x_train, y_train = images(n_train, rng, templates)
    x_test, y_test = images(n_test, rng, templates)
    folder.mkdir(parents=True, exist_ok=True)
    reference, ours = folder / "reference.npz", folder / "cnnspec.npz"
    with atomic_path(reference) as temp, open(temp, "wb") as handle:
        np.savez(handle, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    with atomic_path(ours) as temp, open(temp, "wb") as handle:
        np.savez(
            handle,
            x_train=np.concatenate([x_train, x_test]),
            y_train=np.concatenate([y_train, y_test]),
            x_test=x_test,
            y_test=y_test,
        )
    return {
        "reference": reference,
        "cnnspec": ours,
        "train_images": n_train,
        "validation_images": n_test,
        "validation_split": n_test / (n_train + n_test),
    }
