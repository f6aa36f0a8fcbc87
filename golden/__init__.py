"""Golden data of usconv, installed as the package ``usconv_golden`` (see FORMAT.md)."""
