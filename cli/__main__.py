"""`python -m bionic_cli` runs the `bionic` command."""

from bionic_cli.launch import main

main()
