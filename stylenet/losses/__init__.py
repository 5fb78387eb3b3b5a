"""The frozen VGG loss network, pure loss functions and the objective built from them."""
