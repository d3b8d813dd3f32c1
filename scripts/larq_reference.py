"""Train the main job's models with the real Larq on TensorFlow (CPU) to get reference figures.

Usage: TF_USE_LEGACY_KERAS=1 python scripts/larq_reference.py mlp|cnn [--recipe larq|better] [--seeds 0 1 2] [--epochs N]
Prints one JSON line per seed: per-epoch train loss/accuracy and the final test accuracy.
Data: the IDX files of the Debian package dataset-fashion-mnist, scaled to [-1, 1] as bitgrad does.
"""
import argparse, gzip, json, time

import numpy as np
import larq as lq
import tensorflow as tf

DIR = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(f"{DIR}/{name}", "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mlp():
    kw = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
    return tf.keras.models.Sequential([
        tf.keras.layers.Flatten(input_shape=(28, 28, 1)),
        lq.layers.QuantDense(512, kernel_quantizer="ste_sign", kernel_constraint="weight_clip"),
        lq.layers.QuantDense(10, activation="softmax", **kw),
    ])


def better_mlp():
    kw = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)
    L = tf.keras.layers
    return tf.keras.models.Sequential([
        L.Flatten(input_shape=(28, 28, 1)),
        lq.layers.QuantDense(512, kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False),
        L.BatchNormalization(scale=False),
        lq.layers.QuantDense(10, **kw), L.BatchNormalization(scale=False), L.Activation("softmax"),
    ])


def better_optimizer(model, steps):
    """bitgrad train --recipe better: Adam from 1e-2 with cosine decay; for the MLP, Bop trains
    the binary kernels and Adam the rest."""
    adam = tf.keras.optimizers.legacy.Adam(tf.keras.optimizers.schedules.CosineDecay(1e-2, steps, alpha=0.01))
    if model == "cnn":
        return adam
    bop = lq.optimizers.Bop(threshold=1e-6, gamma=1e-3)
    return lq.optimizers.CaseOptimizer((lq.optimizers.Bop.is_binary_variable, bop), default_optimizer=adam)


def cnn():
    kw = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)
    L = tf.keras.layers
    return tf.keras.models.Sequential([
        lq.layers.QuantConv2D(32, (3, 3), kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False,
                              input_shape=(28, 28, 1)),
        L.MaxPooling2D((2, 2)), L.BatchNormalization(scale=False),
        lq.layers.QuantConv2D(64, (3, 3), **kw), L.MaxPooling2D((2, 2)), L.BatchNormalization(scale=False),
        lq.layers.QuantConv2D(64, (3, 3), **kw), L.BatchNormalization(scale=False), L.Flatten(),
        lq.layers.QuantDense(64, **kw), L.BatchNormalization(scale=False),
        lq.layers.QuantDense(10, **kw), L.BatchNormalization(scale=False), L.Activation("softmax"),
    ])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=["mlp", "cnn"])
    p.add_argument("--recipe", choices=["larq", "better"], default="larq")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=None)
    a = p.parse_args()
    epochs = a.epochs or (5 if a.model == "mlp" else 3)
    x = idx("train-images-idx3-ubyte.gz").reshape(-1, 28, 28, 1) / 127.5 - 1
    y = idx("train-labels-idx1-ubyte.gz").astype(np.int64)
    xt = idx("t10k-images-idx3-ubyte.gz").reshape(-1, 28, 28, 1) / 127.5 - 1
    yt = idx("t10k-labels-idx1-ubyte.gz").astype(np.int64)
    for seed in a.seeds:
        tf.keras.utils.set_random_seed(seed)
        better = a.recipe == "better"
        model = (better_mlp() if better else mlp()) if a.model == "mlp" else cnn()
        optimizer = better_optimizer(a.model, epochs * -(-len(x) // 64)) if better else "adam"
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        t = time.time()
        h = model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
        secs = time.time() - t
        loss, acc = model.evaluate(xt, yt, verbose=0)
        print(json.dumps(dict(model=a.model, recipe=a.recipe, seed=seed, epochs=epochs, train_loss=h.history["loss"],
                              train_accuracy=h.history["accuracy"], test_loss=loss, test_accuracy=acc,
                              images_per_second=60000 * epochs / secs)), flush=True)


if __name__ == "__main__":
    main()
