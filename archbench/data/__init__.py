"""Data loaders: torchvision's MNIST / Fashion-MNIST, and a synthetic set that needs no download."""

from archbench.data.datasets import DATASETS, load_dataset, make_loaders, synthetic_dataset

__all__ = ["DATASETS", "load_dataset", "make_loaders", "synthetic_dataset"]
