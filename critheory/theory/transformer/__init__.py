"""Transformers at infinite width: the T x T token kernel and the APJN through pre-LN (and
post-LN) residual stacks of multi-head self-attention and MLP blocks [Dinan, Yaida, Zhang,
arXiv:2304.02034; Doshi, He, Gromov].

``softmax``  expectations over the softmax of Gaussian logits (randomized QMC, with errors)
``rules``    the token-kernel and tangent-kernel rule of each block kind
``depth``    the recursion through depth (:func:`transformer_depth`) and the one-token exponent
"""
from critheory.theory.transformer.depth import (TransformerCurves, input_kernel,
                                                one_token_exponent, transformer_depth)
from critheory.theory.transformer.softmax import AttentionKernel, attention_kernel

__all__ = ["TransformerCurves", "transformer_depth", "input_kernel", "one_token_exponent",
           "attention_kernel", "AttentionKernel"]
