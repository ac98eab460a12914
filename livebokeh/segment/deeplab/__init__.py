"""DeepLab-v3+ (MobileNetV2) in Keras 3, with Google's released PASCAL VOC weights.

Importing this package is cheap; the model and TensorFlow load when a segmenter is built.
"""

from livebokeh.segment.deeplab.segmenter import DeepLabSegmenter

__all__ = ["DeepLabSegmenter"]
