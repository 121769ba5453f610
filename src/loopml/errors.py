"""The loopml exception tree.

Every error loopml raises on purpose derives from :class:`LoopmlError`. Each class carries a
stable ``code`` that maps to an HTTP status, so the REST client can raise the very same class
that the direct store raised on the server::

    LoopmlError
    ├── InvalidArgumentError          INVALID_ARGUMENT      400
    │   ├── FilterSyntaxError         INVALID_FILTER        400
    │   └── UnsafePathError           UNSAFE_PATH           400
    ├── NotFoundError                 NOT_FOUND             404
    │   ├── ExperimentNotFoundError   EXPERIMENT_NOT_FOUND  404
    │   ├── RunNotFoundError          RUN_NOT_FOUND         404
    │   ├── ArtifactNotFoundError     ARTIFACT_NOT_FOUND    404
    │   └── MonitorNotFoundError      MONITOR_NOT_FOUND     404
    ├── AlreadyExistsError            ALREADY_EXISTS        409
    ├── ConflictError                 CONFLICT              409
    │   ├── ParamConflictError        PARAM_CONFLICT        409
    │   └── InvalidStateError         INVALID_STATE         409
    ├── UnauthenticatedError          UNAUTHENTICATED       401
    ├── PermissionDeniedError         PERMISSION_DENIED     403
    ├── RateLimitedError              RATE_LIMITED          429
    ├── IntegrityError                DATA_CORRUPTED        500
    ├── StoreUnavailableError         STORE_UNAVAILABLE     503
    └── MissingDependencyError        MISSING_DEPENDENCY    500
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExistsError",
    "ArtifactNotFoundError",
    "ConflictError",
    "DataValidationError",
    "DatasetNotFoundError",
    "ExperimentNotFoundError",
    "FilterSyntaxError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidStateError",
    "LoopmlError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "MonitorNotFoundError",
    "NotFoundError",
    "ParamConflictError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RunNotFoundError",
    "SignatureError",
    "StoreUnavailableError",
    "UnauthenticatedError",
    "UnsafePathError",
    "UntrustedModelError",
    "error_class_for_code",
]


class LoopmlError(Exception):
    """Base class of every error loopml raises on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the REST API sends for this error."""
        return {"error_code": self.code, "message": self.message, "details": self.details}


class InvalidArgumentError(LoopmlError, ValueError):
    """A caller passed a value that is not acceptable; the message names the field."""

    code = "INVALID_ARGUMENT"
    http_status = 400


class FilterSyntaxError(InvalidArgumentError):
    """A search filter or order-by clause could not be parsed."""

    code = "INVALID_FILTER"

    def __init__(self, message: str, *, text: str, position: int) -> None:
        pointer = f"\n  {text}\n  {' ' * position}^"
        super().__init__(
            f"{message} (at position {position}){pointer}", position=position, text=text
        )
        self.position = position
        self.text = text


class UnsafePathError(InvalidArgumentError):
    """An artifact path could escape its folder or is otherwise not allowed."""

    code = "UNSAFE_PATH"


class NotFoundError(LoopmlError, LookupError):
    code = "NOT_FOUND"
    http_status = 404


class ExperimentNotFoundError(NotFoundError):
    code = "EXPERIMENT_NOT_FOUND"


class RunNotFoundError(NotFoundError):
    code = "RUN_NOT_FOUND"


class ArtifactNotFoundError(NotFoundError):
    code = "ARTIFACT_NOT_FOUND"


class DatasetNotFoundError(NotFoundError):
    code = "DATASET_NOT_FOUND"


class ModelNotFoundError(NotFoundError):
    """No registered model, version or alias with that name."""

    code = "MODEL_NOT_FOUND"


class MonitorNotFoundError(NotFoundError):
    """No monitor with that name."""

    code = "MONITOR_NOT_FOUND"


class AlreadyExistsError(LoopmlError):
    code = "ALREADY_EXISTS"
    http_status = 409


class ConflictError(LoopmlError):
    code = "CONFLICT"
    http_status = 409


class ParamConflictError(ConflictError):
    """A param was logged again with a different value (params are immutable)."""

    code = "PARAM_CONFLICT"


class InvalidStateError(ConflictError):
    """The operation is not allowed in the resource's current state (e.g. a finished run)."""

    code = "INVALID_STATE"


class DataValidationError(InvalidArgumentError):
    """Data broke validation rules; ``report`` (a ValidationReport) lists every failure."""

    code = "DATA_VALIDATION_FAILED"
    http_status = 422

    def __init__(self, message: str, *, report: Any = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.report = report


class UntrustedModelError(LoopmlError):
    """Loading this model would run code from storage (pickle); pass ``trusted=True`` only
    for a model whose source you trust."""

    code = "UNTRUSTED_MODEL"
    http_status = 403


class SignatureError(InvalidArgumentError):
    """Input does not match the model's signature; ``problems`` lists each offending field."""

    code = "SIGNATURE_MISMATCH"
    http_status = 422

    def __init__(self, message: str, *, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, problems=problems or [])
        self.problems = problems or []


class IntegrityError(LoopmlError):
    """Stored bytes do not match their recorded hash: the data is corrupted."""

    code = "DATA_CORRUPTED"
    http_status = 500


class StoreUnavailableError(LoopmlError):
    """The metadata or blob store could not be reached or opened."""

    code = "STORE_UNAVAILABLE"
    http_status = 503


class MissingDependencyError(LoopmlError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    code = "MISSING_DEPENDENCY"
    http_status = 500

    @classmethod
    def for_extra(cls, package: str, extra: str, purpose: str) -> MissingDependencyError:
        return cls(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'loopml[{extra}]'",
            package=package,
            extra=extra,
        )


class UnauthenticatedError(LoopmlError):
    """The server needs a valid bearer token: none was sent, or it is unknown or revoked."""

    code = "UNAUTHENTICATED"
    http_status = 401
    #: sent with the HTTP response (RFC 6750: the scheme the client must use)
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class PermissionDeniedError(LoopmlError):
    """The token is valid but its role or its scopes do not allow this call."""

    code = "PERMISSION_DENIED"
    http_status = 403


class RateLimitedError(LoopmlError):
    """Too many failed attempts to authenticate from one address; ``retry_after`` says how
    many seconds to wait."""

    code = "RATE_LIMITED"
    http_status = 429

    @property
    def headers(self) -> dict[str, str]:
        """Sent with the HTTP response: when to try again."""
        return {"Retry-After": str(self.details.get("retry_after", 60))}


def _all_subclasses(cls: type[LoopmlError]) -> list[type[LoopmlError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_class_for_code(code: str) -> type[LoopmlError]:
    """The exception class for a stable error code (the inverse of ``cls.code``)."""
    for cls in _all_subclasses(LoopmlError):
        if cls.code == code:
            return cls
    return LoopmlError
