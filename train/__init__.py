"""GAN training, sampling and evaluation straight from the catalog."""
