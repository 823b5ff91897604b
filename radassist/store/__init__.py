"""Durable files: received instances (and, in :mod:`radassist.store.outputs`, what we produce)."""
