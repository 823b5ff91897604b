"""Stage 2, complete: a study quiet for long enough (per its pipeline) is claimed once and gets a drafting job."""
