"""Dataset readers, sample data, preprocessing, sampling and the Lightning DataModule."""
