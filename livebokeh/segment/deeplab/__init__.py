"""DeepLab-v3+ (MobileNetV2) in Keras 3, with Google's released PASCAL VOC weights.

Importing this package is cheap; the model, Keras and TensorFlow load when a segmenter is built. It
picks Keras's backend first: where TensorFlow is not installed (it is the ``tensorflow`` extra),
Keras runs on JAX where that is installed (the ``test`` extra brings it; see
:func:`~.model.choose_keras_backend`).
"""

from livebokeh.segment.deeplab.model import choose_keras_backend

choose_keras_backend()

from livebokeh.segment.deeplab.segmenter import DeepLabOptions, DeepLabSegmenter

__all__ = ["DeepLabOptions", "DeepLabSegmenter"]
