#!/usr/bin/env python3
"""A classifier as our Keras users make them, converted by tf2onnx: the int8 quantizer's
test input for "any float ONNX" (runtime/tests/keras_classifier.rs, whose fixture this
made with --epochs 5).

NHWC 48x48x1 input scaled to [-1, 1] outside the model (as Keras applications'
preprocess_input does), a mini-Xception body (separable convs, residual Adds with strided
1x1 shortcuts), a 3x3 conv to the 7 classes, GlobalAveragePooling, Softmax. Trained here with Adam on FER2013
train for a few epochs, then converted with tf2onnx (opset 13).

    pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 pillow
    python3 scripts/keras-classifier.py --data ../shared/data/fer2013 --out keras_fer.onnx

Prints one JSON line: Keras' own float accuracy on public_test, the ONNX path, seconds.
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow 2.21's oneDNN kernels corrupt the heap training this net on the full set here
# (aborts after a few hundred steps; 10 steps pass); the plain kernels do not.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
from tensorflow.keras import layers  # noqa: E402

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def mini_xception(classes=len(CLASSES)):
    inp = keras.Input((48, 48, 1), name="image")
    x = layers.Conv2D(8, 3, use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(8, 3, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for width in (16, 32, 64, 128):
        shortcut = layers.Conv2D(width, 1, strides=2, padding="same", use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.Add()([x, shortcut])
    x = layers.Conv2D(classes, 3, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Softmax(name="probabilities")(x)
    return keras.Model(inp, out)


def load(folder):
    # PIL, not tf.data: the images are tiny and a plain array trains as fast.
    xs, ys = [], []
    for label, name in enumerate(CLASSES):
        directory = os.path.join(folder, name)
        for file in sorted(os.listdir(directory)):
            with Image.open(os.path.join(directory, file)) as im:
                xs.append(np.asarray(im.convert("L").resize((48, 48)), dtype=np.float32))
            ys.append(label)
    # [-1, 1], as the quantizer is told with --input-scale 2/255 --input-offset -1.
    return (np.stack(xs)[..., None] / 127.5 - 1.0).astype(np.float32), np.array(ys)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder with train/ and public_test/ class folders")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    started = time.time()
    keras.utils.set_random_seed(args.seed)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    x_train, y_train = load(os.path.join(args.data, "train"))
    x_test, y_test = load(os.path.join(args.data, "public_test"))
    model = mini_xception()
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    # train_on_batch over shuffled arrays: model.fit on the 28,709-image array crashes inside
    # TensorFlow 2.21 here (heap corruption in its tf.data pipeline; 640 images do not).
    rng = np.random.default_rng(args.seed)
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), 64):
            batch = order[i:i + 64]
            loss, acc = model.train_on_batch(x_train[batch], y_train[batch])
        print(f"epoch {epoch + 1}/{args.epochs}: last batch loss {loss:.3f} acc {acc:.3f}", flush=True)
    probabilities = np.concatenate([model.predict_on_batch(x_test[i:i + 256]) for i in range(0, len(x_test), 256)])
    accuracy = float((probabilities.argmax(1) == y_test).mean())

    import tf2onnx  # noqa: E402  (after TensorFlow: it imports it)
    spec = (tf.TensorSpec((None, 48, 48, 1), tf.float32, name="image"),)
    tmp = args.out + ".tmp"
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, output_path=tmp)
    os.replace(tmp, args.out)
    print(json.dumps({"onnx": args.out, "keras_float_accuracy": accuracy, "epochs": args.epochs,
                      "seconds": round(time.time() - started, 1)}))


if __name__ == "__main__":
    main()
