"""The few ideas every layer shares, free of Django: the error base (field, message), the
one text -> bool parser, and safe file names."""
