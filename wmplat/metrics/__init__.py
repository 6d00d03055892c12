"""Built-in metrics, one module each."""
