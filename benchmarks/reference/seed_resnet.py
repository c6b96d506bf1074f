"""Hand-written reference: the seed document's residual network, trained the way the seed trains it.

``create_residual_block`` and ``create_resnet_model`` are copied unchanged from the seed document
(shared/seeds, "2. Advanced CNN Architectures"); the training code, including the per-sample
augmentation map, is the seed's too (see ``seed_training.py``), as in the seed's CIFAR-10 project.
This is the code a user would write without cnnspec; the benchmark runs it beside
``cnnspec train specs/resnet.yaml``:

    .venv/bin/python benchmarks/reference/seed_resnet.py --npz data.npz --epochs 5 --json out.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_training import run
from tensorflow.keras import layers, models


# fmt: off
# ---------------------------------------------------------------- seed document (verbatim) ----
def create_residual_block(x, filters, kernel_size=3):
    # Shortcut
    shortcut = x

    # First convolution
    x = layers.Conv2D(filters, kernel_size, padding='same')(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation('relu')(x)

    # Second convolution
    x = layers.Conv2D(filters, kernel_size, padding='same')(x)
    x = layers.BatchNormalization()(x)

    # Add shortcut
    if shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, padding='same')(shortcut)
        shortcut = layers.BatchNormalization()(shortcut)

    x = layers.Add()([x, shortcut])
    x = layers.Activation('relu')(x)

    return x

def create_resnet_model(input_shape, num_classes):
    inputs = layers.Input(shape=input_shape)

    # Initial convolution
    x = layers.Conv2D(64, 7, strides=2, padding='same')(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation('relu')(x)
    x = layers.MaxPooling2D(3, strides=2, padding='same')(x)

    # Residual blocks
    x = create_residual_block(x, 64)
    x = create_residual_block(x, 64)
    x = create_residual_block(x, 128)
    x = create_residual_block(x, 128)

    # Final layers
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(num_classes, activation='softmax')(x)

    model = models.Model(inputs, x)
    return model
# ---------------------------------------------------------------- end of seed document code ----
# fmt: on


if __name__ == "__main__":
    run(create_resnet_model, "The seed document's residual network, trained as the seed trains it.")
