"""HL7 v2 as a wire format: the ORU^R01 we build, the ACKs we read and write, MLLP framing."""
