"""Built-in tasks (dataset plugins), one module each, plus the batched MLP they share."""
