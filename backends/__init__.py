"""Backends under test, one thin adapter each behind one interface (SPEC §9)."""
