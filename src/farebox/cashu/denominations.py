"""Which amounts farebox asks the mint for when it receives ecash, and which of them it gives
back as change.

Change is known only once the request has run, and asking the mint again then would put a
second mint call (and its failure modes) after the request. So the received amount S is split
into powers of two that can make every amount from 0 to S: 1, 2, 4, ... 2^k (every amount up to
2^(k+1) - 1) plus the binary digits of what is left. Any change is then a subset, taken greedily
from the largest; the proofs not taken are the operator's.
"""

from __future__ import annotations

from collections.abc import Sequence


def binary_parts(amount: int) -> list[int]:
    return [1 << bit for bit in range(amount.bit_length()) if amount >> bit & 1]


def change_making_split(amount: int) -> list[int]:
    """Powers of two summing to `amount` from which any smaller amount can be taken (ascending,
    as NUT-03 asks of a wallet's outputs)."""
    if amount <= 0:
        return []
    k = (amount + 1).bit_length() - 2  # the largest k with 2^(k+1) - 1 <= amount
    ladder = [1 << bit for bit in range(k + 1)]
    return sorted(ladder + binary_parts(amount - (2 ** (k + 1) - 1)))


def pick(amounts: Sequence[int], target: int) -> list[int] | None:
    """Indexes of `amounts` (powers of two) summing to `target`, largest first; None if none."""
    chosen: list[int] = []
    left = target
    for index in sorted(range(len(amounts)), key=lambda i: -amounts[i]):
        if 0 < amounts[index] <= left:
            chosen.append(index)
            left -= amounts[index]
    return chosen if left == 0 else None
