"""The MANSCDP error type, shared by the parser and the builders."""


class ManscdpError(ValueError):
    """A MANSCDP body is malformed, unsafe or unacceptable."""
