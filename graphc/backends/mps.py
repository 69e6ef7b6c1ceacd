"""Apple's MPS backend: graphc does not support it."""


def is_available() -> bool:
    return False


def is_built() -> bool:
    return False
