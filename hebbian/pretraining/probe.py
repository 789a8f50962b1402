"""Linear probe of frozen features: how linearly decodable are the labels?

`linear_probe`: multinomial logistic regression on standardised frozen features, full-batch
L-BFGS in float64 (deterministic, no learning rate to tune), the L2 strength chosen from a
small grid on a validation fifth of the training frames, then refit on all training frames;
accuracy on held-out *episodes* (`dataset.held_out_split`: frames within an episode are
nearly duplicates, so a random split would flatter every encoder).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float) -> torch.Tensor:
    """Multinomial logistic regression by full-batch L-BFGS; x (N, D+1) float64 -> weights (D+1, K)."""
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], lr=1.0, max_iter=200, tolerance_grad=1e-7, tolerance_change=1e-10,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        # The bias row (last) is not penalised.
        loss = nn.functional.cross_entropy(x @ w, y) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach()


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 l2_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1), val_fraction: float = 0.2,
                 seed: int = 0) -> dict:
    """Accuracy of a linear classifier on frozen features (see the module docstring).

    Args: train_x (N, D), train_y (N,) int, test_x (M, D), test_y (M,) int.
    Returns: {"accuracy" (test), "train_accuracy", "majority" (test accuracy of always
    predicting the most frequent training class), "l2", "num_train", "num_test", "num_classes"}.
    """
    train_y = np.asarray(train_y, dtype=np.int64)
    test_y = np.asarray(test_y, dtype=np.int64)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    mean = train_x.mean(axis=0, dtype=np.float64)
    std = train_x.std(axis=0, dtype=np.float64) + 1e-6

    def design(x):
        z = (np.asarray(x, dtype=np.float64) - mean) / std
        return torch.from_numpy(np.concatenate([z, np.ones((len(z), 1))], axis=1))

    xtr, xte = design(train_x), design(test_x)
    ytr, yte = torch.from_numpy(train_y), torch.from_numpy(test_y)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(train_y))
    n_val = max(1, int(len(perm) * val_fraction))
    val, fit = torch.from_numpy(perm[:n_val]), torch.from_numpy(perm[n_val:])
    best = None
    for l2 in l2_grid:
        w = fit_logistic(xtr[fit], ytr[fit], num_classes, l2)
        acc = float(((xtr[val] @ w).argmax(1) == ytr[val]).double().mean())
        if best is None or acc > best[0]:
            best = (acc, l2)
    l2 = best[1]
    w = fit_logistic(xtr, ytr, num_classes, l2)
    majority = int(np.bincount(train_y, minlength=num_classes).argmax())
    return {"accuracy": float(((xte @ w).argmax(1) == yte).double().mean()),
            "train_accuracy": float(((xtr @ w).argmax(1) == ytr).double().mean()),
            "majority": float(np.mean(test_y == majority)), "l2": l2,
            "num_train": int(len(train_y)), "num_test": int(len(test_y)), "num_classes": num_classes}
