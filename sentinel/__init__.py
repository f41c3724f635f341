"""sentinel: runtime security enforcement for Linux hosts."""

__version__ = "0.1.0"
