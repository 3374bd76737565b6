"""The seed networks, one family per module; importing this package registers them all."""

from archbench.models import inception, lenet, mnist_net, resnet  # noqa: F401  (registration side effects)
