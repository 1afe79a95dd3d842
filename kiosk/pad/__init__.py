"""Presentation-attack self-test (ISO/IEC 30107-3 vocabulary): render attack sequences, replay them
through the real loop, and report APCER, BPCER and non-response rates with Clopper-Pearson intervals."""
