"""Ordinary least squares with HC3 standard errors, for many small models over one design at once.

Each model is a list of columns of a shared design matrix (column 0 the intercept); the
coefficient of interest is always the model's column 1. Pure numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

# A column whose Cholesky pivot (its residual sum of squares after the columns before it) is
# this small relative to its own sum of squares lies in their span: exact duplicates give ~1e-16.
RANK_TOL = 1e-9
# Leverage this close to 1 leaves HC3's (1 - h)^2 denominator undefined.
LEVERAGE_LIMIT = 1.0 - 1e-10
BATCH = 32


@dataclass(frozen=True)
class Fitted:
    """Column 1 of one model: coefficient, HC3 standard error, residual degrees of freedom, and
    the per-image vectors a resampling test needs (its row of (X'X)^-1 X', residuals, leverages)."""

    coef: float
    se: float
    df: int
    weights: np.ndarray
    resid: np.ndarray
    leverage: np.ndarray
    basis: np.ndarray  # (columns, images): orthonormal rows spanning the model's columns


def batched_hc3(design: np.ndarray, y: np.ndarray, models: list[np.ndarray]):
    """Yield ``(i, Fitted or None)`` for each model; None where its columns are collinear.

    Models of similar size go through together: the Gram matrix of a model is a block of the
    whole design's, its Cholesky factor L gives Q' = L^-1 X', and from Q the leverages, the
    residuals and the row of (X'X)^-1 X' that makes column 1's coefficient. Shorter models are
    padded with columns of zeros whose Gram diagonal is 1, which changes none of these.
    """
    n = design.shape[0]
    gram = design.T @ design
    xty = design.T @ y
    pad = design.shape[1]
    # One row per column, so that a model's gathered columns are contiguous (columns, images) blocks.
    rows = np.vstack([design.T, np.zeros((1, n))])
    order = np.argsort([len(cols) for cols in models], kind="stable")
    for start in range(0, len(order), BATCH):
        chunk = order[start : start + BATCH]
        width = max(len(models[i]) for i in chunk)
        idx = np.full((len(chunk), width), pad)
        for row, i in enumerate(chunk):
            idx[row, : len(models[i])] = models[i]
        real = idx != pad
        safe = np.where(real, idx, 0)
        g = np.where(real[:, :, None] & real[:, None, :], gram[safe[:, :, None], safe[:, None, :]], 0.0)
        diag = np.arange(width)
        g[:, diag, diag] = np.where(real, g[:, diag, diag], 1.0)
        try:
            lower = np.linalg.cholesky(g)
        except np.linalg.LinAlgError:
            yield from ((i, None) for i in chunk)  # every model of the chunk takes the careful path
            continue
        singular = (lower[:, diag, diag] ** 2 <= RANK_TOL**2 * g[:, diag, diag]).any(axis=1)
        inverse = np.linalg.inv(lower)
        q_t = inverse @ rows[idx]  # (models, columns, images)
        qty = np.einsum("bij,bj->bi", inverse, np.where(real, xty[safe], 0.0))
        coef = np.einsum("bk,bk->b", inverse[:, :, 1], qty)
        resid = y - (qty[:, None, :] @ q_t)[:, 0, :]
        weights = (inverse[:, None, :, 1] @ q_t)[:, 0, :]
        leverage = np.einsum("bkn,bkn->bn", q_t, q_t)
        for row, i in enumerate(chunk):
            if singular[row]:
                yield i, None
            else:
                yield i, _finish(coef[row], weights[row], resid[row], leverage[row], n - len(models[i]), q_t[row])


def hc3(x: np.ndarray, y: np.ndarray) -> Fitted:
    """Column 1 of one full-rank model by Householder QR: the careful path for rare models."""
    q, r = np.linalg.qr(x)
    qty = q.T @ y
    coef = linalg.solve_triangular(r, qty)
    unit = np.zeros(x.shape[1])
    unit[1] = 1.0
    # Row 1 of (X'X)^-1 X' = R^-1 Q' is (R^-T e_1)' Q'.
    weights = q @ linalg.solve_triangular(r, unit, trans="T")
    leverage = np.einsum("ij,ij->i", q, q)
    return _finish(coef[1], weights, y - q @ qty, leverage, x.shape[0] - x.shape[1], q.T)


def _finish(coef, weights, resid, leverage, df, basis) -> Fitted:
    if df <= 0 or leverage.max() >= LEVERAGE_LIMIT:
        se = np.nan
    else:
        se = float(np.sqrt(np.sum(weights**2 * resid**2 / (1.0 - leverage) ** 2)))
    return Fitted(float(coef), se, int(df), weights, resid, leverage, basis)


def independent_columns(x: np.ndarray) -> tuple[np.ndarray, dict[int, bool]]:
    """Columns to keep (0 and 1 always), and {dropped column: does it depend on columns 0-1 alone?}.

    Walks the columns in order and drops each one in the span of those kept before it, so of
    two collinear columns the later goes. One Gram-Schmidt pass (each projection taken twice,
    which keeps it orthogonal to rounding): O(images x columns^2), not a least-squares solve per
    column.
    """
    n, width = x.shape
    norms = np.maximum(np.linalg.norm(x, axis=0), 1.0)
    basis = np.zeros((n, width))
    kept = []
    why = {}
    for k in range(width):
        resid = _residual(basis[:, : len(kept)], x[:, k])
        if k >= 2 and np.linalg.norm(resid) <= RANK_TOL * norms[k]:
            why[k] = bool(np.linalg.norm(_residual(basis[:, :2], x[:, k])) <= RANK_TOL * norms[k])
            continue
        basis[:, len(kept)] = resid / np.linalg.norm(resid)
        kept.append(k)
    return np.array(kept), why


def _residual(basis: np.ndarray, column: np.ndarray) -> np.ndarray:
    resid = column - basis @ (basis.T @ column)
    return resid - basis @ (basis.T @ resid)
