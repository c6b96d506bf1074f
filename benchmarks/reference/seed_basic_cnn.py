"""Hand-written reference: the seed document's basic CNN, trained the way the seed trains it.

``create_basic_cnn`` is copied unchanged from the seed document (shared/seeds, "1. Basic CNN
Architecture"); the training code is the seed's too (see ``seed_training.py``). This is the code a
user would write without cnnspec; the benchmark runs it beside ``cnnspec train specs/basic_cnn.yaml``:

    .venv/bin/python benchmarks/reference/seed_basic_cnn.py --npz data.npz --epochs 5 --json out.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_training import run
from tensorflow.keras import layers, models


# fmt: off
# ---------------------------------------------------------------- seed document (verbatim) ----
def create_basic_cnn(input_shape, num_classes):
    model = models.Sequential([
        # First Convolutional Block
        layers.Conv2D(32, (3, 3), activation='relu', input_shape=input_shape),
        layers.BatchNormalization(),
        layers.MaxPooling2D((2, 2)),

        # Second Convolutional Block
        layers.Conv2D(64, (3, 3), activation='relu'),
        layers.BatchNormalization(),
        layers.MaxPooling2D((2, 2)),

        # Third Convolutional Block
        layers.Conv2D(64, (3, 3), activation='relu'),
        layers.BatchNormalization(),
        layers.MaxPooling2D((2, 2)),

        # Dense Layers
        layers.Flatten(),
        layers.Dense(64, activation='relu'),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation='softmax')
    ])

    return model
# ---------------------------------------------------------------- end of seed document code ----
# fmt: on


if __name__ == "__main__":
    run(create_basic_cnn, "The seed document's basic CNN, trained as the seed trains it.")
