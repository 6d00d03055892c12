"""Built-in baselines, one module each: methods that need no learning."""
