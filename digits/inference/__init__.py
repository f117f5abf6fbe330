"""Using trained models: what a model needs to predict (its spec), the warm inference worker, results."""
