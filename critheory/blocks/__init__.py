"""Networks as sequences of blocks: the one description read by the theory and the simulator.

``blocks``    Dense, Phi, LayerNorm, RMSNorm, Residual (pure descriptions)
``network``   :class:`Network` (activation + unit) and its :class:`Capabilities`
``registry``  the named architectures and their aliases
``transformer``  Attention (mixes tokens), MLP (hidden-width ratio), the transformer stacks
"""
from critheory.blocks.blocks import Block, Dense, LayerNorm, Phi, Residual, RMSNorm, mlp_block
from critheory.blocks.network import Capabilities, Network
from critheory.blocks.registry import canonical, names, network
from critheory.blocks.transformer import MLP, Attention, TransformerNetwork, transformer

__all__ = ["Block", "Dense", "Phi", "LayerNorm", "RMSNorm", "Residual", "mlp_block", "Network",
           "Capabilities", "network", "names", "canonical", "Attention", "MLP",
           "TransformerNetwork", "transformer"]
