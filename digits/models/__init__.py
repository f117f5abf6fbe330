"""Model kinds: each is a form, the training task it runs and how its results are described."""
