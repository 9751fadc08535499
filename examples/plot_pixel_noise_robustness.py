"""
How much the seed study's pixel noise costs a small network
===========================================================

The seed study's final model lost 7 points of accuracy on a perturbed test set whose
images had about 3% of their pixels replaced by noise. This example draws that noise on a
few real test images, trains a narrow ResNet-9 (:class:`sklcifar.FastNetClassifier`) on
1,000 grayscale CIFAR-10 images, and scores it clean, with the 3% pixel noise and under two
CIFAR-10-C corruptions with :func:`sklcifar.robustness.evaluate_robustness`.
"""

import matplotlib.pyplot as plt

from sklcifar import make_pipeline
from sklcifar.datasets import load_cifar, stratified_subset
from sklcifar.perturbations import pixel_noise
from sklcifar.plots import plot_robustness
from sklcifar.robustness import evaluate_robustness
from sklcifar.transformers import Grayscale

train = load_cifar(split="train")  # the archive named by SKLCIFAR_DATA
test = load_cifar(split="test")
X_train, y_train = stratified_subset(train.images, train.target, 1000, random_state=0)
X_test, y_test = stratified_subset(test.images, test.target, 300, random_state=0)

# %%
# The seed's noise replaces 3% of the pixel positions of every image with uniform random
# values; here on the grey images the classifier sees.
gray = Grayscale().transform(X_test[:6])
noisy = pixel_noise(gray, 0.03, random_state=0)
fig, axes = plt.subplots(2, 6, figsize=(9, 3.2))
for column in range(6):
    for row, images in enumerate((gray, noisy)):
        axes[row, column].imshow(images[column, ..., 0], cmap="gray", vmin=0, vmax=255)
        axes[row, column].axis("off")
    axes[0, column].set_title(test.target_names[y_test[column]], fontsize=9)
fig.suptitle("clean (top) and with 3% pixel noise (bottom)")
plt.show()

# %%
# A narrow ResNet-9 with the fast recipe, for 2 epochs.
pipe = make_pipeline("fastnet", width=8, epochs=2, random_state=0)
pipe.fit(X_train, y_train)

# %%
# Accuracy clean, with the pixel noise and under two corruptions at severity 3.
report = evaluate_robustness(
    pipe, X_test, y_test, corruptions=("gaussian_noise", "fog"), severities=(3,)
)
print(report.to_markdown())
plot_robustness(report)
plt.show()
