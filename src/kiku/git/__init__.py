"""Receiving pushes: each app's bare repository, served over git's smart HTTP."""
