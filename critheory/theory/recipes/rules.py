"""Width and family rules of the recipes: one function per parameter group and optimizer.

Every function returns ``(init_variance, lr_factor)`` for ONE entry of the group: the variance
of the entry at initialization (the fan-in division included) and the multiplier of the global
learning rate, *before* the depth factors of :mod:`critheory.theory.recipes.recipe`. Notation:
``n`` the width (embedding dimension), ``s ∈ [0, 1]`` the family parameter (``s = 0``
neural-tangent scaling, ``s = 1`` maximal-update scaling), ``C`` the order-one constant of the
group (the critical ``σ_w²``, ``σ_b²`` of the activation for the MLP groups).

Sources (equation numbers as printed in the papers):

* [DYZ] Dinan, Yaida, Zhang, *Effective theory of transformers at initialization*,
  arXiv:2304.02034: initialization (1.25)–(1.33), the family's head initialization (1.34)
  (footnote 8), SGD factors (1.99)–(1.107), AdamW factors (1.108)–(1.116), and footnote 26:
  the family multiplies every non-head SGD factor by ``n^s`` and every non-head AdamW factor by
  ``n^{s/2}`` (the AdamW half power because non-head gradients pick up ``√(1/n^s)`` from the
  head's initialization).
* [Y] Yaida, *Meta-principled family of hyperparameter scaling strategies*, arXiv:2210.04909,
  as stated in [DYZ] footnotes 8 and 26 (its own equation numbers were not read here).
* [PDLT] Roberts, Yaida, Hanin, *The principles of deep learning theory*: the MLP in the
  learning-rate convention of §7–8 (bias rate ``λ_b``, weight rate ``λ_W/n_{l−1}`` per entry).

For the MLP the transformer's rules are read block by block: the input layer is a dense stem
(the patchify rule (1.99)/(1.108) with fan-in ``n_0``), a hidden layer is a dense block of
fan-in ``n`` (the Q/K/V/U rule, (1.101)/(1.110)), a bias is a vector of ``n`` order-one entries
(the positional-embedding rule (1.100)/(1.109)), and the output layer is the head
((1.33)–(1.34), (1.107)/(1.116)).

Examples
--------
>>> from critheory.theory.recipes.rules import mlp_hidden, transformer_mlp_out
>>> mlp_hidden(1024, 0.0, 2.0, "sgd")           # NTK parametrization: C/n and rate 1/n
(0.001953125, 0.0009765625)
>>> v, lr = transformer_mlp_out(64, 4.0, 0.0, 1.0, "adamw")
>>> v == 1 / 256 and lr == 1 / (256 * 8)        # (1.32) C_X/(Mn), (1.115) 1/(Mn √n)
True
"""
from __future__ import annotations

import math

from critheory.errors import InvalidArgumentError

__all__ = ["OPTIMIZERS", "check_family", "mlp_input", "mlp_hidden", "mlp_bias", "mlp_output",
           "transformer_embedding", "transformer_attention", "transformer_mlp_in",
           "transformer_mlp_out", "transformer_head", "transformer_bias"]

OPTIMIZERS = ("sgd", "adamw")


def check_family(s) -> float:
    """The family parameter ``s`` as a float in ``[0, 1]`` (else InvalidArgumentError)."""
    try:
        v = float(s)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"family s must be a number in [0, 1], got {s!r}") from None
    if not (0.0 <= v <= 1.0):
        raise InvalidArgumentError(f"family s must be in [0, 1], got {s!r}")
    return v


def _opt(optimizer: str) -> str:
    if optimizer not in OPTIMIZERS:
        raise InvalidArgumentError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                                   f"got {optimizer!r}")
    return optimizer


def _nonhead(n: int, s: float, optimizer: str) -> float:
    """[DYZ] footnote 26: non-head factors × ``n^s`` (SGD) or × ``n^{s/2}`` (AdamW)."""
    return float(n) ** s if optimizer == "sgd" else float(n) ** (s / 2)


# ------------------------------------------------------------------------------------ MLP
def mlp_input(n: int, n0: int, s: float, C: float, optimizer: str) -> tuple[float, float]:
    """Input-layer weights (fan-in ``n_0``): variance ``C/n_0``; rate ``n^s/n_0`` (SGD) or
    ``n^{s/2}/(n_0 √n)`` (AdamW).

    [PDLT] §7–8 (weight rate ``λ_W/n_0``); [DYZ] (1.25) and (1.99)/(1.108) for a dense stem of
    fan-in ``n_0`` (``|g| ∼ 1/√n`` per entry), times the footnote-26 family factor.
    """
    base = 1.0 / n0 if _opt(optimizer) == "sgd" else 1.0 / (n0 * math.sqrt(n))
    return C / n0, base * _nonhead(n, s, optimizer)


def mlp_hidden(n: int, s: float, C: float, optimizer: str) -> tuple[float, float]:
    """Hidden-layer weights (fan-in ``n``): variance ``C/n``; rate ``n^{s−1}`` (SGD) or
    ``n^{s/2}/(n √n)`` (AdamW).

    [PDLT] §7–8; [DYZ] (1.27)–(1.31) and (1.101)–(1.105) (SGD ``1/n``), (1.110)–(1.113)
    (AdamW ``1/(n √n)``), family factor of footnote 26.
    """
    base = 1.0 / n if _opt(optimizer) == "sgd" else 1.0 / (n * math.sqrt(n))
    return C / n, base * _nonhead(n, s, optimizer)


def mlp_bias(n: int, s: float, C: float, optimizer: str) -> tuple[float, float]:
    """Biases of the input and hidden layers: variance ``C`` (= the critical ``σ_b²``); rate
    ``n^s`` (SGD) or ``n^{s/2}/√n`` (AdamW).

    [PDLT] §7–8 (bias rate ``λ_b``); [DYZ] (1.100)/(1.109) (a vector of ``n`` order-one
    entries: SGD ``1``, AdamW ``1/√n``), family factor of footnote 26.
    """
    base = 1.0 if _opt(optimizer) == "sgd" else 1.0 / math.sqrt(n)
    return C, base * _nonhead(n, s, optimizer)


def mlp_output(n: int, n_out: int, s: float, C: float, optimizer: str) -> tuple[float, float]:
    """Output-layer (head) weights: variance ``C/n^{1+s}``; rate ``1/n`` (SGD) or
    ``1/(n √n_out)`` (AdamW), without the family factor.

    [DYZ] (1.34) (footnote 8, the family's head initialization), (1.107) and (1.116); the
    head's learning-rate factor is the one the family leaves unchanged (footnote 26).
    """
    lr = 1.0 / n if _opt(optimizer) == "sgd" else 1.0 / (n * math.sqrt(n_out))
    return C / float(n) ** (1.0 + s), lr


# ---------------------------------------------------------------------------- transformer
def transformer_embedding(n: int, s: float, C: float, optimizer: str) -> tuple[float, float]:
    """Word embedding (one-hot inputs): variance ``C`` (not divided by the vocabulary); rate
    ``n^s`` (SGD) or ``n^{s/2}/√n`` (AdamW).

    [DYZ] (1.25) (and (1.42)), (1.99) ``λ = 1``, (1.108) ``λ̃ = 1/√n``, footnote 26.
    """
    base = 1.0 if _opt(optimizer) == "sgd" else 1.0 / math.sqrt(n)
    return C, base * _nonhead(n, s, optimizer)


def transformer_attention(n: int, s: float, C: float, optimizer: str) -> tuple[float, float]:
    """Query, key, value and out_proj weights: variance ``C/n``; rate ``n^{s−1}`` (SGD) or
    ``n^{s/2}/(n √n)`` (AdamW).

    [DYZ] (1.27)–(1.30), (1.101)–(1.104), (1.110)–(1.113), footnote 26.
    """
    base = 1.0 / n if _opt(optimizer) == "sgd" else 1.0 / (n * math.sqrt(n))
    return C / n, base * _nonhead(n, s, optimizer)


def transformer_mlp_in(n: int, M: float, s: float, C: float,
                       optimizer: str) -> tuple[float, float]:
    """First MLP weights ``W`` (``n → Mn``): variance ``C/n``; rate ``n^{s−1}`` (SGD) or
    ``n^{s/2}/(n √(Mn))`` (AdamW).

    [DYZ] (1.31), (1.105), (1.114), footnote 26.
    """
    base = 1.0 / n if _opt(optimizer) == "sgd" else 1.0 / (n * math.sqrt(M * n))
    return C / n, base * _nonhead(n, s, optimizer)


def transformer_mlp_out(n: int, M: float, s: float, C: float,
                        optimizer: str) -> tuple[float, float]:
    """Second MLP weights ``X`` (``Mn → n``): variance ``C/(Mn)``; rate ``n^s/(Mn)`` (SGD) or
    ``n^{s/2}/(Mn √n)`` (AdamW).

    [DYZ] (1.32), (1.106), (1.115), footnote 26.
    """
    base = 1.0 / (M * n) if _opt(optimizer) == "sgd" else 1.0 / (M * n * math.sqrt(n))
    return C / (M * n), base * _nonhead(n, s, optimizer)


def transformer_head(n: int, n_out: int, s: float, C: float,
                     optimizer: str) -> tuple[float, float]:
    """Head weights: variance ``C/n^{1+s}``; rate ``1/n`` (SGD) or ``1/(n √n_out)`` (AdamW),
    without the family factor.

    [DYZ] (1.33), (1.34), (1.107), (1.116), footnote 26.
    """
    return mlp_output(n, n_out, s, C, optimizer)


def transformer_bias(n: int, s: float, C: float, optimizer: str) -> tuple[float, float]:
    """Biases inside the blocks (and positional embeddings): variance ``C``; rate ``n^s``
    (SGD) or ``n^{s/2}/√n`` (AdamW).

    [DYZ] (1.26), (1.100), (1.109) (the positional-embedding rule, the one printed for a
    vector of ``n`` order-one bias-like entries), footnote 26. [DYZ] initializes the block
    biases at zero (text after (1.59)).
    """
    return mlp_bias(n, s, C, optimizer)
