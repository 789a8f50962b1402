"""The family of evolved Hebbian plasticity rules and the layout of their coefficients.

For a synapse from presynaptic unit i (activation o_i) to postsynaptic unit j (o_j):

    dw_ij = eta_ij * (A_ij * o_i * o_j + B_ij * o_i + C_ij * o_j + D_ij)

A rule is named by the terms it evolves. Terms it does not name are zero, and a rule
without the `_lr` suffix has no learning rate (eta = 1):

    A        A                      ABC      A, B, C
    AD       A, D                   ABC_lr   A, B, C, eta
    AD_lr    A, D, eta              ABCD     A, B, C, D
                                    ABCD_lr  A, B, C, D, eta   (the paper's main rule)

Coefficient layout
------------------
The coefficients of one layer with `n_in` inputs and `n_out` outputs are a single float32
array of shape (n_in, n_out, k), k = number of evolved terms, the letters in name order
with eta last: for ABCD_lr, `coeffs[i, j] == (A_ij, B_ij, C_ij, D_ij, eta_ij)`.
The flat parameter vector of a network is the layers' arrays, each flattened in C order,
concatenated in layer order (input layer first). So for sizes (n0, n1, n2) and k terms,
layer 0 occupies `flat[0 : n0*n1*k]` and layer 1 `flat[n0*n1*k : n0*n1*k + n1*n2*k]`.
"""
from __future__ import annotations

from dataclasses import dataclass

RULE_NAMES = ("A", "AD", "AD_lr", "ABC", "ABC_lr", "ABCD", "ABCD_lr")


@dataclass(frozen=True)
class Rule:
    """One plasticity rule: which terms it evolves and where each sits in a synapse's k values.

    Attributes:
        name: one of RULE_NAMES.
        terms: evolved terms in layout order, e.g. ("A", "B", "C", "D", "eta").
    """

    name: str
    terms: tuple[str, ...]

    @property
    def k(self) -> int:
        """Coefficients per synapse."""
        return len(self.terms)

    def index(self, term: str) -> int:
        """Position of `term` in a synapse's coefficients, or -1 when the rule lacks it."""
        return self.terms.index(term) if term in self.terms else -1

    def num_params(self, sizes: tuple[int, ...]) -> int:
        """Coefficients of a network with layer widths `sizes` (input first)."""
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) * self.k


def get_rule(name: str) -> Rule:
    """The Rule called `name`; raises ValueError listing the valid names."""
    if name not in RULE_NAMES:
        raise ValueError(f"unknown plasticity rule {name!r}; choose one of: {', '.join(RULE_NAMES)}")
    letters, _, lr = name.partition("_")
    return Rule(name=name, terms=tuple(letters) + (("eta",) if lr == "lr" else ()))
