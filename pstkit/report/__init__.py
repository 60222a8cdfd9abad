"""`pstkit report`: a migration report a person can hand to a customer.

`data` gathers it from the store alone (runs, catalog, ledger, problems;
nothing is connected to), `html` renders one self-contained page with inline
SVG charts, `csv` writes the same tables for spreadsheets.
"""
