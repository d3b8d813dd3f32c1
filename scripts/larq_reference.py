"""Train the main job's models with the real Larq on TensorFlow (CPU) to get reference figures.

Usage: TF_USE_LEGACY_KERAS=1 python scripts/larq_reference.py mlp|cnn [--recipe larq|better] [--seeds 0 1 2] [--epochs N]
Prints one JSON line per seed: per-epoch train loss/accuracy and the final test accuracy.
Data: the IDX files of the Debian package dataset-fashion-mnist, scaled to [-1, 1] as bitgrad does.

A Larq Zoo architecture (larq-zoo 2.4, weights=None) on CIFAR-10's binary batches, as
`bitgrad train --model MODEL.json --data DIR` trains it (Adam 1e-3, sparse categorical
cross-entropy, images scaled to [-1, 1]); --json writes the model's JSON for bitgrad:
  python scripts/larq_reference.py zoo --arch QuickNetSmall --data DIR [--limit N] [--epochs 1] [--json model.json]
Prints per-epoch loss, test accuracy, images/s of the timed epochs (the first epoch, which
traces the graph, is timed apart) and the process's peak resident memory.
  python scripts/larq_reference.py synthetic-cifar DIR [--per-batch 1000]
writes a learnable synthetic data set in CIFAR-10's binary format (ten classes, each a fixed
random smooth colour pattern plus noise), for when CIFAR-10 itself is not at hand.
"""
import argparse, gzip, json, os, resource, time

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


CIFAR10_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def cifar10(path):
    """One CIFAR-10 binary batch: [n, 32, 32, 3] images scaled to [-1, 1] and their labels."""
    rec = np.fromfile(path, np.uint8).reshape(-1, 3073)
    x = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) / 127.5 - 1
    return x.astype(np.float32), rec[:, 0].astype(np.int64)


def synthetic_cifar(directory, per_batch, seed=0):
    rng = np.random.default_rng(seed)
    # Ten smooth patterns: 4x4x3 random colours upsampled to 32x32.
    patterns = np.kron(rng.uniform(0, 255, (10, 3, 4, 4)), np.ones((1, 1, 8, 8)))
    os.makedirs(directory, exist_ok=True)
    for name in CIFAR10_FILES:
        labels = rng.integers(0, 10, per_batch)
        images = 0.6 * patterns[labels] + 0.4 * rng.uniform(0, 255, (per_batch, 3, 32, 32))
        rec = np.concatenate([labels[:, None].astype(np.uint8), np.clip(images, 0, 255).astype(np.uint8).reshape(per_batch, -1)], 1)
        rec.tofile(os.path.join(directory, name))


def zoo(a):
    import larq_zoo as lqz

    arch = getattr(lqz.sota, a.arch, None) or getattr(lqz.literature, a.arch)
    batches = [cifar10(os.path.join(a.data, f)) for f in CIFAR10_FILES]
    x = np.concatenate([b[0] for b in batches[:5]])[: a.limit]
    y = np.concatenate([b[1] for b in batches[:5]])[: a.limit]
    xt, yt = batches[5]
    tf.keras.utils.set_random_seed(a.seeds[0])
    model = arch(input_shape=(32, 32, 3), num_classes=10, weights=None)
    if a.json:
        with open(a.json, "w") as f:
            f.write(model.to_json())
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    times, losses = [], []
    for epoch in range(a.epochs or 1):
        t = time.time()
        h = model.fit(x, y, batch_size=a.batch_size, epochs=1, shuffle=True, verbose=0)
        times.append(time.time() - t)
        losses.append(h.history["loss"][0])
    loss, acc = model.evaluate(xt, yt, batch_size=256, verbose=0)
    timed = times[1:] or times
    print(json.dumps(dict(arch=a.arch, samples=len(x), batch_size=a.batch_size, epochs=len(times), train_loss=losses,
                          test_loss=loss, test_accuracy=acc, epoch_seconds=times,
                          images_per_second=len(x) * len(timed) / sum(timed),
                          peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          threads=tf.config.threading.get_intra_op_parallelism_threads(), tensorflow=tf.__version__,
                          larq=lq.__version__ if hasattr(lq, "__version__") else None)), flush=True)


def main():
    import sys

    if sys.argv[1:2] == ["synthetic-cifar"]:
        q = argparse.ArgumentParser()
        q.add_argument("command")
        q.add_argument("dir")
        q.add_argument("--per-batch", type=int, default=1000)
        b = q.parse_args()
        synthetic_cifar(b.dir, b.per_batch)
        return
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=["mlp", "cnn", "zoo"])
    p.add_argument("--arch", default="QuickNetSmall")
    p.add_argument("--data", default=None)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", default=None)
    p.add_argument("--recipe", choices=["larq", "better"], default="larq")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=None)
    a = p.parse_args()
    if a.model == "zoo":
        return zoo(a)
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
