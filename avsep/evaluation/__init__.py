"""Scoring separations: BSS Eval, the scoring protocol, evaluation runs, tables and HTML reports."""
