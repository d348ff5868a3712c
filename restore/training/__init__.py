"""Training (torch, the `train` extra). Serving code never imports this package."""
