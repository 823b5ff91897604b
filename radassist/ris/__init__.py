"""What the RIS tells us: orders and signed reports received over HL7, and the order behind a study."""
