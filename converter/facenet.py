"""Inception-ResNet-v1 (FaceNet) rebuilt in tf.keras with the layer names of
``facenet_keras.h5`` (Sandberg's 20170512-110547, Keras port).

The original file stores its residual scaling as Lambda layers holding Python
bytecode that no current Keras can load; here they are a ``ScaleSum`` layer
computing ``x0 + x1 * scale``.  BatchNorm layers have no gamma (``scale=False``)
and epsilon 0.001; every stride-2 convolution uses ``valid`` padding.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

keras = tf.keras
layers = keras.layers

INPUT_SIZE = 160
EMBEDDING_SIZE = 128


@keras.utils.register_keras_serializable(package="kiosk")
class ScaleSum(layers.Layer):  # type: ignore[misc,name-defined]
    """Residual connection with a fixed scale: ``inputs[0] + inputs[1] * scale``."""

    def __init__(self, scale: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs: list[Any]) -> Any:
        return inputs[0] + inputs[1] * self.scale

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


def _conv_bn(x: Any, filters: int, kernel: int | tuple[int, int], name: str, strides: int = 1,
             padding: str = "same", activation: str | None = "relu") -> Any:
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(axis=3, momentum=0.995, epsilon=0.001, scale=False, name=f"{name}_BatchNorm")(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_Activation")(x)
    return x


def _block(x: Any, kind: str, idx: int, scale: float, activation: bool = True) -> Any:
    p = f"{kind}_{idx}"
    if kind == "Block35":
        b0 = _conv_bn(x, 32, 1, f"{p}_Branch_0_Conv2d_1x1")
        b1 = _conv_bn(x, 32, 1, f"{p}_Branch_1_Conv2d_0a_1x1")
        b1 = _conv_bn(b1, 32, 3, f"{p}_Branch_1_Conv2d_0b_3x3")
        b2 = _conv_bn(x, 32, 1, f"{p}_Branch_2_Conv2d_0a_1x1")
        b2 = _conv_bn(b2, 32, 3, f"{p}_Branch_2_Conv2d_0b_3x3")
        b2 = _conv_bn(b2, 32, 3, f"{p}_Branch_2_Conv2d_0c_3x3")
        branches = [b0, b1, b2]
    elif kind == "Block17":
        b0 = _conv_bn(x, 128, 1, f"{p}_Branch_0_Conv2d_1x1")
        b1 = _conv_bn(x, 128, 1, f"{p}_Branch_1_Conv2d_0a_1x1")
        b1 = _conv_bn(b1, 128, (1, 7), f"{p}_Branch_1_Conv2d_0b_1x7")
        b1 = _conv_bn(b1, 128, (7, 1), f"{p}_Branch_1_Conv2d_0c_7x1")
        branches = [b0, b1]
    else:  # Block8
        b0 = _conv_bn(x, 192, 1, f"{p}_Branch_0_Conv2d_1x1")
        b1 = _conv_bn(x, 192, 1, f"{p}_Branch_1_Conv2d_0a_1x1")
        b1 = _conv_bn(b1, 192, (1, 3), f"{p}_Branch_1_Conv2d_0b_1x3")
        b1 = _conv_bn(b1, 192, (3, 1), f"{p}_Branch_1_Conv2d_0c_3x1")
        branches = [b0, b1]
    mixed = layers.Concatenate(axis=3, name=f"{p}_Concatenate")(branches)
    up = layers.Conv2D(int(x.shape[-1]), 1, use_bias=True, name=f"{p}_Conv2d_1x1")(mixed)
    x = ScaleSum(scale, name=f"{p}_ScaleSum")([x, up])
    if activation:
        x = layers.Activation("relu", name=f"{p}_Activation")(x)
    return x


def build_facenet() -> Any:
    """The network with random weights; see ``load_h5_weights``."""
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="input")
    x = _conv_bn(inputs, 32, 3, "Conv2d_1a_3x3", strides=2, padding="valid")
    x = _conv_bn(x, 32, 3, "Conv2d_2a_3x3", padding="valid")
    x = _conv_bn(x, 64, 3, "Conv2d_2b_3x3")
    x = layers.MaxPooling2D(3, strides=2, name="MaxPool_3a_3x3")(x)
    x = _conv_bn(x, 80, 1, "Conv2d_3b_1x1", padding="valid")
    x = _conv_bn(x, 192, 3, "Conv2d_4a_3x3", padding="valid")
    x = _conv_bn(x, 256, 3, "Conv2d_4b_3x3", strides=2, padding="valid")
    for i in range(1, 6):
        x = _block(x, "Block35", i, 0.17)

    b0 = _conv_bn(x, 384, 3, "Mixed_6a_Branch_0_Conv2d_1a_3x3", strides=2, padding="valid")
    b1 = _conv_bn(x, 192, 1, "Mixed_6a_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 192, 3, "Mixed_6a_Branch_1_Conv2d_0b_3x3")
    b1 = _conv_bn(b1, 256, 3, "Mixed_6a_Branch_1_Conv2d_1a_3x3", strides=2, padding="valid")
    b2 = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_6a_Branch_2_MaxPool_1a_3x3")(x)
    x = layers.Concatenate(axis=3, name="Mixed_6a")([b0, b1, b2])
    for i in range(1, 11):
        x = _block(x, "Block17", i, 0.1)

    b0 = _conv_bn(x, 256, 1, "Mixed_7a_Branch_0_Conv2d_0a_1x1")
    b0 = _conv_bn(b0, 384, 3, "Mixed_7a_Branch_0_Conv2d_1a_3x3", strides=2, padding="valid")
    b1 = _conv_bn(x, 256, 1, "Mixed_7a_Branch_1_Conv2d_0a_1x1")
    b1 = _conv_bn(b1, 256, 3, "Mixed_7a_Branch_1_Conv2d_1a_3x3", strides=2, padding="valid")
    b2 = _conv_bn(x, 256, 1, "Mixed_7a_Branch_2_Conv2d_0a_1x1")
    b2 = _conv_bn(b2, 256, 3, "Mixed_7a_Branch_2_Conv2d_0b_3x3")
    b2 = _conv_bn(b2, 256, 3, "Mixed_7a_Branch_2_Conv2d_1a_3x3", strides=2, padding="valid")
    b3 = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_7a_Branch_3_MaxPool_1a_3x3")(x)
    x = layers.Concatenate(axis=3, name="Mixed_7a")([b0, b1, b2, b3])
    for i in range(1, 6):
        x = _block(x, "Block8", i, 0.2)
    x = _block(x, "Block8", 6, 1.0, activation=False)

    x = layers.GlobalAveragePooling2D(name="AvgPool")(x)
    x = layers.Dense(EMBEDDING_SIZE, use_bias=False, name="Bottleneck")(x)
    x = layers.BatchNormalization(momentum=0.995, epsilon=0.001, scale=False, name="Bottleneck_BatchNorm")(x)
    return keras.Model(inputs, x, name="inception_resnet_v1")
