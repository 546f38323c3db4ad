"""Provider contracts: the YAML files in this folder, their meta-schema, loader and model."""

from veomock.contracts.loader import CONTRACTS_DIR, ContractError, available, load, load_all, load_file
from veomock.contracts.model import CANONICAL_STATES, TERMINAL_STATES, Contract, Model, Operation
from veomock.contracts.templates import Template

__all__ = [
    "CANONICAL_STATES",
    "CONTRACTS_DIR",
    "TERMINAL_STATES",
    "Contract",
    "ContractError",
    "Model",
    "Operation",
    "Template",
    "available",
    "load",
    "load_all",
    "load_file",
]
