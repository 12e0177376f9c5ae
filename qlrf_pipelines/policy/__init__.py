"""Plan validation: schema, Rego policies (regopy, in-process) and safety checks."""
