"""Padding as an index map (SPEC §2), used by the forward and, transposed, by the backward.

``xp[i] = x[source_index(...)[i]]`` for ``i`` in ``[0, L_pad)``, where -1 marks a zero
(``padding_mode='zeros'``). The adjoint of padding adds ``grad_xp[i]`` into
``grad_x[source[i]]``, which :func:`grad_input_taps` folds into the taps of each input
position — so every padding mode has its exact adjoint without a separate pass.
"""
from __future__ import annotations

import numpy as np


def source_index(L: int, pl: int, pr: int, mode: str) -> np.ndarray:
    """int64 array of length ``L + pl + pr``: the source position ``m(i - pl)`` in ``x``
    for each padded position i, -1 where the padded value is a zero. With ``j = i - pl``
    outside ``[0, L)``: reflect ``-j`` / ``2(L-1) - j`` (edge not repeated), replicate
    clamps to ``0`` / ``L-1``, circular ``j mod L``; zeros gives -1."""
    j = np.arange(-pl, L + pr, dtype=np.int64)
    inside = (j >= 0) & (j < L)
    if mode == "zeros":
        return np.where(inside, j, -1)
    if mode == "reflect":
        return np.where(j < 0, -j, np.where(j >= L, 2 * (L - 1) - j, j))
    if mode == "replicate":
        return np.clip(j, 0, L - 1)
    if mode == "circular":
        return np.mod(j, L)
    raise ValueError(f"padding_mode: unknown mode {mode!r}")


def forward_positions(L_out: int, K: int, stride: int, dilation: int) -> np.ndarray:
    """``(L_out, K)`` padded positions read by output t through tap k: ``t*stride + k*dilation``."""
    # stride only matters when L_out > 1 and dilation when K > 1 (then both are bounded by
    # L_pad); avoid int64 overflow for huge but valid values.
    stride = stride if L_out > 1 else 1
    dilation = dilation if K > 1 else 1
    t = np.arange(L_out, dtype=np.int64)[:, None]
    k = np.arange(K, dtype=np.int64)[None, :]
    return t * stride + k * dilation


def grad_input_taps(src: np.ndarray, L: int, L_out: int, K: int, stride: int, dilation: int):
    """For each input position j, every ``(k, t)`` with ``src[t*stride + k*dilation] == j``
    (all the outputs t that read x[j] through tap k, padding copies included).

    Returns ``(kk, tt)``, int64 arrays of shape ``(L, M)`` with M the largest count;
    unused slots hold ``k = K`` and ``t = L_out`` (indices of appended zeros)."""
    pos = forward_positions(L_out, K, stride, dilation)
    kk, tt = np.meshgrid(np.arange(K), np.arange(L_out), indexing="xy")
    j = src[pos].ravel()
    kk, tt = kk.ravel(), tt.ravel()
    keep = j >= 0
    j, kk, tt = j[keep], kk[keep], tt[keep]
    order = np.argsort(j, kind="stable")
    j, kk, tt = j[order], kk[order], tt[order]
    counts = np.bincount(j, minlength=L)
    M = int(counts.max(initial=0))
    slot = np.arange(j.size) - np.repeat(np.cumsum(counts) - counts, counts)
    out_k = np.full((L, max(M, 1)), K, np.int64)
    out_t = np.full((L, max(M, 1)), L_out, np.int64)
    out_k[j, slot] = kk
    out_t[j, slot] = tt
    return out_k, out_t
