"""Sketch to face: drawings in, line-art augmentation, painting, and the sketch model's evaluation."""
