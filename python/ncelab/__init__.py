"""ncelab: contrastive learning with k negatives, from Python.

- ``load_checkpoint(path)``: a checkpoint's tensors (numpy) and metadata, without torch.
- ``load_encoder(path)``: the trained encoder as a ``torch.nn.Module`` with the input
  normalisation inside; ``forward`` maps N x C x H x W floats in [0, 1] to (features, head).
- ``ncelab.theory``: the theory engine of the C library (``solve``, ``population_loss``).
"""
from .checkpoint import Checkpoint, load_checkpoint

__version__ = "0.1.0"

__all__ = ["Checkpoint", "load_checkpoint", "load_encoder", "library_version", "__version__"]


def load_encoder(path, mean=None, std=None):
    """The encoder of checkpoint `path` as a torch.nn.Module in evaluation mode (ncelab.models)."""
    from .models import load_encoder as _load

    return _load(path, mean=mean, std=std)


def library_version():
    """The version of the C library this package loads (libncelab.so)."""
    from ._lib import lib

    return lib().ncelab_version().decode()
