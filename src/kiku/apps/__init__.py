"""Apps: names, ownership and who may touch them."""
