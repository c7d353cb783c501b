# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""A held-out split cut from the training data: fixed seed, disjoint, the held-out rows removed from training."""

from __future__ import annotations

from datasets import Dataset


HELDOUT_SEED = 0  # fixed, so every run of a recipe (and `srft eval --data`) cuts the same rows


def split_heldout(dataset: Dataset, fraction: float, seed: int = HELDOUT_SEED) -> tuple[Dataset, Dataset]:
    """
    Cuts `fraction` of `dataset`'s rows (at least one) into a held-out split, with a fixed seed.

    Returns `(train, heldout)`: disjoint row sets whose union is `dataset`. Raises `ValueError` naming
    `heldout_fraction` when the fraction is outside (0, 1) or leaves either side empty.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"`heldout_fraction` must be between 0 and 1 (exclusive), got {fraction}.")
    n = len(dataset)
    n_heldout = max(1, round(fraction * n))
    if n_heldout >= n:
        raise ValueError(
            f"`heldout_fraction={fraction}` of {n} training rows leaves no row to train on: lower it, or give a "
            "separate `heldout_dataset` file."
        )
    split = dataset.train_test_split(test_size=n_heldout, seed=seed, shuffle=True)
    return split["train"], split["test"]
