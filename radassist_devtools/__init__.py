"""Tools for tests, demos and CI that ship beside RadAssist but are no part of the service.

Nothing in ``radassist``, ``dicom_node``, ``workers`` or ``hl7_node`` imports this package at run
time; ``radassist make-tiny-model`` imports it when the command runs.
"""
