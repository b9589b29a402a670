"""One module per console script; each is a thin composition of the layers below."""
