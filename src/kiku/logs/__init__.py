"""Logplex: the per-app log stream, its sessions, drains and metrics."""
