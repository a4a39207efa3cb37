"""`python -m roofline`: the same command line as the installed `roofline`."""

from .cli import main

main()
