"""The seed document's training code, shared by the hand-written reference scripts.

Between the ``seed document`` rulers: ``compile_model``, ``create_data_augmentation``,
``prepare_dataset`` and ``train_cnn_model`` exactly as the seed document writes them (shared/seeds,
"3. Data Augmentation" and "1. Training Process"): Adam, sparse categorical cross-entropy,
batch size 32, augmentation mapped per sample *before* batching, early stopping and
LR-on-plateau on ``val_loss``, the test set as validation data. Two additions, marked: the
benchmark's epoch timer is passed to ``train_cnn_model`` as an extra callback, and
``prepare_dataset_plain`` is ``prepare_dataset`` without the augmentation ``map`` (for the
no-augmentation measurement).

Below the rulers, the harness: it loads a Keras-layout .npz (``x_train, y_train, x_test,
y_test``) instead of downloading CIFAR-10, normalises it as the seed's
``cifar10_classification_project`` does, times each epoch (``on_epoch_begin`` → ``on_epoch_end``
of the last callback: the interval ``cnnspec train`` records) and writes JSON.
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf
from tensorflow.keras import layers, models


# fmt: off
# ---------------------------------------------------------------- seed document (verbatim) ----
def compile_model(model):
    model.compile(
        optimizer='adam',
        loss='sparse_categorical_crossentropy',
        metrics=['accuracy']
    )
    return model


def create_data_augmentation():
    data_augmentation = models.Sequential([
        layers.RandomRotation(0.1),
        layers.RandomZoom(0.1),
        layers.RandomFlip("horizontal"),
        layers.RandomBrightness(0.2),
        layers.RandomContrast(0.2),
    ])
    return data_augmentation


def prepare_dataset(X_train, y_train, X_test, y_test, batch_size=32):
    # Create data augmentation
    data_augmentation = create_data_augmentation()

    # Create training dataset
    train_dataset = tf.data.Dataset.from_tensor_slices((X_train, y_train))
    train_dataset = train_dataset.map(
        lambda x, y: (data_augmentation(x, training=True), y),
        num_parallel_calls=tf.data.AUTOTUNE
    )
    train_dataset = train_dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    # Create test dataset
    test_dataset = tf.data.Dataset.from_tensor_slices((X_test, y_test))
    test_dataset = test_dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    return train_dataset, test_dataset


def prepare_dataset_plain(X_train, y_train, X_test, y_test, batch_size=32):
    # added: prepare_dataset without the augmentation map
    train_dataset = tf.data.Dataset.from_tensor_slices((X_train, y_train))
    train_dataset = train_dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    test_dataset = tf.data.Dataset.from_tensor_slices((X_test, y_test))
    test_dataset = test_dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return train_dataset, test_dataset


def train_cnn_model(model, train_dataset, test_dataset, epochs=10, extra_callbacks=()):  # + extra_callbacks
    # Create callbacks
    callbacks = [
        tf.keras.callbacks.EarlyStopping(
            monitor='val_loss',
            patience=3,
            restore_best_weights=True
        ),
        tf.keras.callbacks.ReduceLROnPlateau(
            monitor='val_loss',
            factor=0.2,
            patience=2
        ),
        *extra_callbacks,  # added: the benchmark's epoch timer
    ]

    # Train model
    history = model.fit(
        train_dataset,
        epochs=epochs,
        validation_data=test_dataset,
        callbacks=callbacks
    )

    return history
# ---------------------------------------------------------------- end of seed document code ----
# fmt: on


class EpochTimer(tf.keras.callbacks.Callback):
    """Seconds from ``on_epoch_begin`` to ``on_epoch_end`` of each epoch (put it last), and the
    wall clock and process CPU time (all threads) at each ``on_epoch_end``."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self.end_wall = []
        self.end_cpu = []
        self._start = 0.0
        self._t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.seconds.append(now - self._start)
        self.end_wall.append(now - self._t0)
        self.end_cpu.append(time.process_time())


def run(create_model, description):
    """Parse the harness options, train ``create_model`` the seed's way, write the timings."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--npz", required=True, help="x_train, y_train, x_test, y_test (uint8 images)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--no-augmentation", action="store_true", help="leave out the augmentation map")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="write epoch times and the history here")
    args = parser.parse_args()

    tf.keras.utils.set_random_seed(args.seed)
    with np.load(args.npz) as data:
        X_train, y_train = data["x_train"], data["y_train"]
        X_test, y_test = data["x_test"], data["y_test"]
    # Normalize data (as the seed's cifar10_classification_project does)
    X_train = X_train.astype("float32") / 255
    X_test = X_test.astype("float32") / 255
    num_classes = int(max(y_train.max(), y_test.max())) + 1

    prepare = prepare_dataset_plain if args.no_augmentation else prepare_dataset
    train_dataset, test_dataset = prepare(X_train, y_train, X_test, y_test)
    model = compile_model(create_model(X_train.shape[1:], num_classes))
    timer = EpochTimer()
    history = train_cnn_model(model, train_dataset, test_dataset, args.epochs, extra_callbacks=[timer])
    result = {
        "epoch_seconds": timer.seconds,
        "epoch_end_wall": timer.end_wall,
        "epoch_end_cpu": timer.end_cpu,
        "train_images": len(y_train),
        "validation_images": len(y_test),
        "parameters": int(model.count_params()),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
