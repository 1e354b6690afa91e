"""Theories of networks at initialization, one subpackage each.

``meanfield``  infinite-width kernels, fixed points, critical sets, universality, depth curves
``roots``      vectorized bracket refinement shared by the theories
"""
