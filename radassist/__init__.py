"""RadAssist: drafts radiology reports with a vision-language model inside a hospital's imaging workflow.

Importing this package starts nothing: processes are started by the CLI (``radassist``).
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
