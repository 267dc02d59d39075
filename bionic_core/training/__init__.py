"""Training runs: the loop, the multi-model engine, device-resident batches, seeding, metrics,
batch augmentation."""
