"""The paper's training methods (§4): one name, one label, one meaning each."""

from __future__ import annotations

from enum import StrEnum


class Method(StrEnum):
    """MSGD (minibatch SGD), MSGD-C (with gradient-norm clipping, Algorithm 1) and MSGD-CR
    (with clipping and the regularizer Ω). The value is the name used on the command
    line and in the results store; :attr:`label` is how figures and tables print it."""

    MSGD = "msgd"
    MSGD_C = "msgd-c"
    MSGD_CR = "msgd-cr"

    @property
    def label(self) -> str:
        return _LABEL[self]

    @property
    def clips(self) -> bool:
        """Whether the method clips the gradient's norm."""
        return self is not Method.MSGD

    @property
    def regularizes(self) -> bool:
        """Whether the method adds Ω."""
        return self is Method.MSGD_CR

    @classmethod
    def parse(cls, value: str | Method) -> Method:
        """The method named ``value``; ``ValueError`` listing the valid names otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown method {value!r}; choose one of {', '.join(m.value for m in cls)}") from None


_LABEL = {Method.MSGD: "MSGD", Method.MSGD_C: "MSGD-C", Method.MSGD_CR: "MSGD-CR"}

#: The three methods in the paper's order.
METHODS: tuple[Method, ...] = tuple(Method)
#: Each method's colour in figures.
METHOD_COLOR = {Method.MSGD: "#d62728", Method.MSGD_C: "#1f77b4", Method.MSGD_CR: "#2ca02c"}
