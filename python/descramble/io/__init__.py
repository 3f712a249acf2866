"""Read a trained network's weights from the files people keep them in.

:func:`load_weights` turns a weights file into an ordered mapping
``name -> ndarray``; :func:`load_layer` picks one dense layer's weight matrix
``W`` (m outputs x n inputs, the layout :func:`descramble.descramble` takes)
and its bias out of it; :func:`load_network` every dense layer of a stack, in
order (and :func:`load_activation` the activation the file names, if any).

Formats, chosen by the file's suffix (case-insensitive):

=============  ==========================================  =========================
suffix         read with                                   needs
=============  ==========================================  =========================
.npy, .npz     NumPy, ``allow_pickle=False``               (nothing more)
.pt, .pth      ``torch.load(weights_only=True)``           ``pip install torch``
.mat           SciPy (v4 to v7), h5py (v7.3 / HDF5)        ``pip install scipy h5py``
.onnx          ``onnx.load``, graph initializers           ``pip install onnx``
=============  ==========================================  =========================

Nothing here unpickles arbitrary Python objects: NumPy object arrays are
skipped, and PyTorch files go through PyTorch's weights-only unpickler.

The package has one module per format (:mod:`.numpy_files`,
:mod:`.torch_files`, :mod:`.matlab`, :mod:`.onnx_files`), each importing its
optional dependency only when a file of its format is read, so
``import descramble.io`` imports none of them; :mod:`.layers` holds the
naming rules of :func:`load_layer`.
"""

from .layers import LayerChoiceError, load_activation, load_layer, load_network
from .weights import SUFFIXES, load_weights

__all__ = ["SUFFIXES", "LayerChoiceError", "load_activation", "load_layer", "load_network", "load_weights"]
