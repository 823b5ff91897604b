"""Sending produced objects to PACS targets: C-STORE (optionally TLS), Orthanc REST, DICOMweb STOW-RS."""

from radassist.pacs.cstore import echo, store_sr
from radassist.pacs.targets import send_sr_file, test_connection

__all__ = ["echo", "send_sr_file", "store_sr", "test_connection"]
