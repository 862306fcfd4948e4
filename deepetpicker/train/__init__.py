"""Training: patch dataset, augmentation, losses and the training job."""
