"""The DICOM listener process: receives studies by C-STORE and answers C-ECHO.

It writes each instance durably and records it, and nothing else: no timers, no models.  It must
never import torch, transformers or ``radassist.models`` (asserted by a test).
"""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
