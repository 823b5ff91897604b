"""The inbound HL7 listener process: MLLP in, :mod:`radassist.ris` behind it, ACKs out."""
