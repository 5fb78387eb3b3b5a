"""Training: config checks, the runner, one fit recipe per kind, LightningModules, data."""
