"""The dataset `mnist-gpt` (placeholder: being written)."""

import wmplat


class MnistGPT(wmplat.ClassifierTask):
    name = "mnist-gpt"
