"""Train a few MNIST-convnet steps under a given strategy on 2 logical CPUs (test_scaling).

Usage: python mirrored.py {default|mirrored} RESULT_JSON
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from visionkit import convnets, data, device  # noqa: E402
from visionkit.training import train  # noqa: E402


def main() -> None:
    kind, result = sys.argv[1], sys.argv[2]
    strategy = device.strategy(kind)
    keras.utils.set_random_seed(0)
    (x, y), _ = data.load_mnist(sample=True)
    x, y = x[:512, ..., None], y[:512]
    with strategy.scope():
        model = convnets.mnist_convnet()
    history = train(model, data.from_arrays(x, y, batch_size=64, shuffle=False), epochs=3, batch_size=64,
                    strategy=strategy, seed=0, progress=False)
    with open(result, "w") as fh:
        json.dump({"replicas": strategy.num_replicas_in_sync, "loss": history.history["loss"]}, fh)


if __name__ == "__main__":
    main()
