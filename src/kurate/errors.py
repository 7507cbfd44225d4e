"""What can go wrong in a run, as exceptions the user can act on (docs/ARCHITECTURE.md, "Configuration").

Every class carries the CLI's exit code and a hint (what to do). Config errors live with the schema
(``kurate.flows.config.ConfigError``, exit code 2); everything else a run can hit is here:

* ``InputError`` (3): an input file, glob or root that does not exist or cannot be read;
* ``PreconditionError`` (1): a stage needs what an earlier stage commits;
* ``StorageError`` (1): a storage endpoint that cannot be reached, or credentials missing or refused;
* ``KurateError`` (1): any other runtime failure, e.g. a Ray worker's.

``explain(exc)`` turns any exception, including the ones raised by boto, fsspec and Ray (whose
wrappers it unwraps to the worker's own exception), into one of these. This module imports nothing
of kurate and no third-party package, so every layer may raise its classes.
"""

from __future__ import annotations

import errno

EXIT_RUNTIME = 1
EXIT_CONFIG = 2
EXIT_INPUT = 3


class KurateError(Exception):
    """A failure with a one-line message (what failed) and a hint (what to do)."""

    exit_code = EXIT_RUNTIME
    default_hint = "run again with --debug for the traceback"

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint

    def __reduce__(self):  # Ray and Prefect pickle exceptions: keep the hint
        return (self.__class__, (self.message, self.hint))

    def line(self) -> str:
        """The message and the hint on one line (newlines in either are folded)."""
        text = f"{_one_line(self.message)} — {_one_line(self.hint)}"
        return text if len(text) <= 600 else text[:599] + "…"


class InputError(KurateError):
    """An input (file, glob, URL) or a root that does not exist or cannot be read."""

    exit_code = EXIT_INPUT
    default_hint = "check the path (a local path, glob, s3:// or https:// URL that exists)"


class PreconditionError(KurateError):
    """A stage needs the committed output of an earlier stage."""

    default_hint = "run the earlier stage first (a re-run redoes only the units that did not commit)"


class StorageError(KurateError):
    """A storage endpoint cannot be reached, or its credentials are missing or refused."""

    default_hint = "check storage_options (endpoint_url, key, secret) and that the server is up"


def explain(exc: BaseException) -> KurateError:
    """The ``KurateError`` that says what ``exc`` means for the user (the worker's own error for Ray's wrappers)."""
    exc = _unwrap(exc)
    if isinstance(exc, KurateError):
        return exc
    name = type(exc).__name__
    module = type(exc).__module__ or ""
    text = _first_line(exc)
    if module.startswith("botocore"):
        if name == "NoCredentialsError":
            return StorageError("no S3 credentials found",
                                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or reference them in storage_options.s3 "
                                "({prefect_secret: BLOCK}, {env: VAR} or {file: PATH}; README: Credentials)")
        if "Endpoint" in name or "Connect" in name:
            return StorageError(f"cannot reach the storage endpoint: {text}",
                                "check storage_options.s3.endpoint_url and that the S3 server is up")
        return StorageError(f"S3 request failed: {text}")
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return InputError(text if exc.filename is None or str(exc.filename) in text else f"{exc.filename}: {text}")
    if isinstance(exc, PermissionError):
        return InputError(f"permission denied: {text}", "check the file permissions, or the storage credentials")
    if isinstance(exc, ConnectionError) or (isinstance(exc, OSError) and exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH)) \
            or name in ("ClientConnectorError", "ConnectError", "ConnectTimeout"):
        return StorageError(f"cannot connect: {text}", "check the endpoint or address in the config and that the server is up")
    if module.startswith("ray"):
        return KurateError(f"Ray failed: {name}: {text}", "the workers' log lines are above; a re-run redoes only what did not commit")
    return KurateError(f"{name}: {text}")


def _unwrap(exc: BaseException) -> BaseException:
    """Follow Ray's wrappers to the exception raised in the worker (RayTaskError.cause, Ray Train's
    worker_failures / controller_failure); at most a few levels."""
    for _ in range(8):
        failures = getattr(exc, "worker_failures", None)
        if isinstance(failures, dict) and failures:
            exc = failures[sorted(failures)[0]]
            continue
        inner = getattr(exc, "controller_failure", None) or (getattr(exc, "cause", None) if type(exc).__module__.startswith("ray") else None)
        if isinstance(inner, BaseException) and inner is not exc:
            exc = inner
            continue
        break
    return exc


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())
