#!/usr/bin/env python3
"""The Keras peer of `fer-train bench`: the same baseline and edge nets, timed the same way.

Prints one JSON document: per model, train_images_per_second (train_on_batch, Adam),
infer_images_per_second (predict_on_batch at the batch size) and infer_batch1_ms, medians
over `--reps` after `--warmup` untimed repetitions, on random 48x48x1 batches.

    pip install tensorflow-cpu   # then: fer-train bench --keras benches/keras_peer.py
"""
import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
from tensorflow.keras import layers  # noqa: E402


def baseline(classes=7):
    # The classic question's net, as in trainer/src/model/baseline.rs.
    return keras.Sequential([
        keras.Input((48, 48, 1)),
        layers.Conv2D(32, 3, padding="same"), layers.BatchNormalization(), layers.PReLU(),
        layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dense(256), layers.BatchNormalization(), layers.PReLU(), layers.Dropout(0.5),
        layers.Dense(classes),
    ])


def edge(classes=7):
    # As trainer/src/model/edge.rs.
    def cbr(x, c, k=3, depthwise=False):
        if depthwise:
            x = layers.DepthwiseConv2D(k, padding="same", use_bias=False)(x)
        else:
            x = layers.Conv2D(c, k, padding="same", use_bias=False)(x)
        return layers.ReLU()(layers.BatchNormalization()(x))
    i = keras.Input((48, 48, 1))
    x = layers.MaxPooling2D(2)(cbr(i, 16))
    x = layers.MaxPooling2D(2)(cbr(cbr(x, 32), 32))
    x = layers.MaxPooling2D(2)(cbr(cbr(x, 64), 64))
    x = cbr(cbr(cbr(x, 128), 128, depthwise=True), 128, k=1)
    x = layers.Dropout(0.3)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(i, layers.Dense(classes)(x))


def bench(model, batch, warmup, reps):
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(7)
    x = rng.random((batch, 48, 48, 1), dtype=np.float32)
    y = rng.integers(0, 7, size=(batch,))
    train, infer, single = [], [], []
    for i in range(warmup + reps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        dt = time.perf_counter() - t
        if i >= warmup:
            train.append(batch / dt)
    for i in range(warmup + reps):
        t = time.perf_counter()
        model.predict_on_batch(x)
        dt = time.perf_counter() - t
        t = time.perf_counter()
        model.predict_on_batch(x[:1])
        d1 = time.perf_counter() - t
        if i >= warmup:
            infer.append(batch / dt)
            single.append(d1 * 1000)
    return {"train_images_per_second": statistics.median(train),
            "infer_images_per_second": statistics.median(infer),
            "infer_batch1_ms": statistics.median(single),
            "parameters": int(model.count_params())}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="baseline,edge")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--reps", type=int, default=20)
    a = p.parse_args()
    tf.keras.utils.set_random_seed(1)
    out = {"tensorflow": tf.__version__}
    for name in a.models.split(","):
        out[name] = bench({"baseline": baseline, "edge": edge}[name](), a.batch_size, a.warmup, a.reps)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
