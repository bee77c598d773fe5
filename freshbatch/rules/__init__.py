"""The rules and batch logic of the built-in phases (1, 3, 5); phase.yaml files point here."""
