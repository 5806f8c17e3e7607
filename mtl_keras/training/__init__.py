"""A training run: its recipe (`run.train`), the trainer, scenarios, optimizers and callbacks."""
