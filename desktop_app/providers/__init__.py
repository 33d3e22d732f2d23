"""Image providers: the contract in ``base``, one module or package per provider."""
