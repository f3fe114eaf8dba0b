"""`python -m syncctl` = the `syncctl` console script."""

from syncctl.main import main

main()
