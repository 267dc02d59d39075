"""The built-in feature plugins: each module of this package is one feature, registered by
default. Adding a built-in feature means adding one module here."""

from __future__ import annotations

import pkgutil


def builtin_feature_modules() -> list[str]:
    """Importable names of every feature module in this package (sorted, so loading is stable)."""
    return sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith("_"))
