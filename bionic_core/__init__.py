"""bionic: which biological constraints make a vision network better? Switch each on and off."""

__version__ = "0.1.0"
