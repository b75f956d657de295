"""Display names of activations, optimizers and hyperparameters, shared by charts and pages."""

NAMES = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "identity": "Identity",
         "sgd": "SGD", "adam": "Adam", "rmsprop": "RMSProp",
         "lr": "learning rate", "batch_size": "batch size", "momentum": "momentum",
         "beta1": "β₁", "beta2": "β₂", "eps": "ε", "rho": "ρ", "gain": "Xavier gain"}


def pair_label(pair: tuple[str, str]) -> str:
    """``("tanh", "sgd")`` → ``"SGD + Tanh"``: optimizer first, as the report names pairs."""
    activation, optimizer = pair
    return f"{NAMES.get(optimizer, optimizer)} + {NAMES.get(activation, activation)}"
