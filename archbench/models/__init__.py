"""The networks, one family per module; importing this package registers them all."""

from archbench.models import (  # noqa: F401  (registration side effects)
    alexnet,
    densenet,
    googlenet,
    inception,
    lenet,
    mnist_net,
    nin,
    resnet,
    vgg,
)
