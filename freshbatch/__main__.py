"""python -m freshbatch."""

from freshbatch.cli import main_entry

main_entry()
