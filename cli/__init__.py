"""The `bionic` command-line interface (installed as the package `bionic_cli`)."""
