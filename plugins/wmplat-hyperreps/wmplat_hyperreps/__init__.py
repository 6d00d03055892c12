"""wmplat-hyperreps: Hyper-Representations (Schürholt et al. 2022) as a wmplat plugin, with
the zoo it needs, small 1-D CNNs on MNIST-1D saved along training."""

__version__ = "0.1.0"
