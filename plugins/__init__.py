"""The built-in feature plugins: each module is one feature, registered by default."""

# Module names, in no meaningful order: features act in the order of Feature.order.
BUILTIN_FEATURES: tuple[str, ...] = (
    "bionic_plugins.layer_norm",
    "bionic_plugins.conv_frontend",
)
