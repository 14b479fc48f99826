"""Dynos: the manager that converges running dynos to the formation, and its backends."""
