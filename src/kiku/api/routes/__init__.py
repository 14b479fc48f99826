"""One module per Platform API resource."""
