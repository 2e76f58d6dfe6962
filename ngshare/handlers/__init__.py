"""Request handlers: one module per resource, thin: parse, call, reply."""
