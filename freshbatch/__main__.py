"""python -m freshbatch."""

from freshbatch.entry import main_entry

main_entry()
