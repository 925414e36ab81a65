"""Stage 1 of the data path: decoding, preprocessing, index files, splits, mixtures and augmentation."""
