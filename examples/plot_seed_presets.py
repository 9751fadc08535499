"""
The seed study's dropout comparison on a small subset
=====================================================

The seed study found that dropout after the dense layers only (its model m6) leaves a
4-block CNN overfitting, while dropout after every block as well (m7) does not. Both are
presets of :class:`sklcifar.ConvNetClassifier`; here they train side by side, narrowed
(8 filters in the first block instead of 32) and on 600 real grayscale CIFAR-10 images
so that the example runs in seconds. The curves show the protocol, not the study's result:
``benchmarks/seed_study.py`` runs the full experiments.
"""

import matplotlib.pyplot as plt
from sklearn.pipeline import Pipeline

from sklcifar import ConvNetClassifier
from sklcifar.datasets import load_cifar, stratified_subset
from sklcifar.transformers import Grayscale

X, y = load_cifar(split="train", return_X_y=True)  # the archive named by SKLCIFAR_DATA
X_small, y_small = stratified_subset(X, y, 600, random_state=0)

# %%
# Explicit parameters override a preset's: the width changes, the design stays the
# preset's (kernel order, dropout placement and rates, dense layers).
histories = {}
for preset in ("m6", "m7"):
    pipe = Pipeline(
        [
            ("grayscale", Grayscale()),
            ("classifier", ConvNetClassifier(preset=preset, filters=8, epochs=2, random_state=0)),
        ]
    )
    pipe.fit(X_small, y_small)
    histories[preset] = pipe.named_steps["classifier"].history_

# %%
# Training (dashed) and validation (solid) loss per epoch; the validation images are a
# stratified 10% held out by ``fit``.
fig, ax = plt.subplots(figsize=(6, 4))
for preset, history in histories.items():
    (line,) = ax.plot(history["val_loss"], label=f"{preset} validation")
    ax.plot(history["loss"], "--", color=line.get_color(), label=f"{preset} training")
ax.set_xlabel("epoch")
ax.set_ylabel("loss")
ax.legend()
plt.show()
