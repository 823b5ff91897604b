"""Sending produced objects to PACS targets."""

from radassist.pacs.cstore import echo, store_sr

__all__ = ["echo", "store_sr"]
