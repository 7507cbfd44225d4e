"""fsspec paths: a root or an input can be a local path, ``s3://…``, ``memory://…`` or ``https://…``.

Storage options (endpoint, credentials) are given per protocol, e.g.
``{"s3": {"endpoint_url": "http://127.0.0.1:9000"}}``, so one config can read inputs over HTTPS and
write the root to S3.

Credentials never travel as text (README "Credentials"): s3fs reads ``AWS_*`` variables and the AWS
credentials file by itself, and a sensitive option (``key``, ``secret``, ``token`` …) may be a
*reference* — ``{env: VAR}``, ``{file: PATH}`` or ``{prefect_secret: BLOCK}`` (resolved by the flows
layer) — that is resolved on the machine that opens the filesystem, a Ray worker or a Ray Job
included. ``wrap_credentials`` turns every sensitive value into a ``Credential``: a ``str`` whose
text is a placeholder, so logs, ``json.dumps``, Prefect parameters and job specs only ever see the
placeholder or the reference; only ``filesystem()`` asks it for the value.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import fsspec
from fsspec.core import url_to_fs

from kurate.errors import InputError

StorageOptions = Mapping[str, Mapping[str, Any]]


# fsspec/s3fs/gcsfs/adlfs option names whose values are secrets
SENSITIVE_OPTIONS = frozenset({
    "key", "secret", "token", "password", "session_token", "aws_access_key_id", "aws_secret_access_key",
    "aws_session_token", "account_key", "sas_token", "client_secret", "connection_string", "credential",
})
REFERENCE_KINDS = ("env", "file", "prefect_secret")
Resolver = Callable[[str], str]


def _from_env(name: str) -> str:
    try:
        return os.environ[name]
    except KeyError:
        raise InputError(f"storage credential {{env: {name}}}: the variable is not set",
                         f"export {name} on the machine that runs the stage (driver, Ray workers, Ray Jobs)") from None


def _from_file(path: str) -> str:
    try:
        with open(os.path.expanduser(path)) as handle:
            return handle.read().strip()
    except OSError as exc:
        raise InputError(f"storage credential {{file: {path}}}: {exc.strerror}",
                         "the file must exist on every machine that runs the stage") from None


RESOLVERS: dict[str, Resolver] = {"env": _from_env, "file": _from_file}


class Credential(str):
    """A secret storage option. Its ``str`` is a placeholder (``<credential …>``), so printing,
    hashing or serializing options never shows the value; ``get_secret_value()`` gives it.

    A literal keeps its value in memory and is dropped by ``credential_references``; a reference is
    resolved lazily where it is first used and serializes as itself."""

    kind: str
    ref: str | None
    resolver: Resolver | None

    def __new__(cls, kind: str, ref: str | None = None, value: str | None = None, resolver: Resolver | None = None):
        self = super().__new__(cls, f"<credential {kind}:{ref}>" if ref is not None else "<credential>")
        self.kind, self.ref, self.resolver, self._value = kind, ref, resolver, value
        return self

    def get_secret_value(self) -> str:
        if self._value is None:
            resolve = self.resolver or RESOLVERS.get(self.kind)
            if resolve is None:
                raise InputError(f"storage credential {{{self.kind}: {self.ref}}}: nothing here resolves {self.kind!r}",
                                 f"use one of {', '.join(REFERENCE_KINDS)}")
            self._value = resolve(self.ref)
        return self._value

    def reference(self) -> dict | None:
        """The serializable form: ``{kind: ref}`` for a reference, None for a literal."""
        return None if self.ref is None else {self.kind: self.ref}

    def __repr__(self) -> str:
        return str.__str__(self)

    def __reduce__(self):
        # A pickle goes to a Ray worker of this run (never to Prefect): it carries the value, resolved
        # here, since a worker may have neither the variable nor the Prefect API. Where this side
        # cannot resolve it, the worker tries itself.
        try:
            value = self.get_secret_value()
        except InputError:
            value = None
        return (Credential, (self.kind, self.ref, value, self.resolver))


def _reference(value: Any) -> tuple[str, str] | None:
    if isinstance(value, Mapping) and len(value) == 1:
        (kind, ref), = value.items()
        if kind in REFERENCE_KINDS and isinstance(ref, str):
            return kind, ref
    return None


def wrap_credentials(options: Any, resolvers: Mapping[str, Resolver] | None = None) -> Any:
    """``options`` with every sensitive value (at any depth) as a ``Credential``."""
    if not isinstance(options, Mapping):
        return options
    wrapped: dict = {}
    for name, value in options.items():
        if name in SENSITIVE_OPTIONS and not isinstance(value, Credential) and value is not None:
            ref = _reference(value)
            if ref is not None:
                value = Credential(ref[0], ref[1], resolver=(resolvers or {}).get(ref[0]))
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                value = Credential("literal", value=str(value))  # YAML reads an all-digit key as a number
            else:
                raise ValueError(f"storage option {name!r}: expected a string or one of "
                                 f"{', '.join('{' + k + ': …}' for k in REFERENCE_KINDS)}")
        elif isinstance(value, Mapping):
            value = wrap_credentials(value, resolvers)
        wrapped[name] = value
    return wrapped


def credential_references(options: Any) -> Any:
    """The form that may leave the process (flow parameters, deployments, job specs): references
    as ``{kind: ref}``, literals left out (the receiver then uses its own environment)."""
    if not isinstance(options, Mapping):
        return options
    out: dict = {}
    for name, value in options.items():
        if isinstance(value, Credential):
            if value.reference() is not None:
                out[name] = value.reference()
        else:
            out[name] = credential_references(value)
    return out


def _reveal(options: Any) -> Any:
    if isinstance(options, Credential):
        return options.get_secret_value()
    if isinstance(options, Mapping):
        return {k: _reveal(v) for k, v in wrap_credentials(options).items()}
    return options


def protocol_of(url: str) -> str:
    """The fsspec protocol of a URL ('file' for plain paths)."""
    return url.split("://", 1)[0] if "://" in url else "file"


def filesystem(url: str, storage_options: StorageOptions | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return (filesystem, path inside it) for a URL, applying that protocol's options."""
    options = _reveal(dict((storage_options or {}).get(protocol_of(url), {})))
    fs, path = url_to_fs(url, **options)
    return fs, path


def unstrip(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A full URL for a path of ``fs`` (fsspec strips the protocol; DuckDB and users need it back)."""
    url = fs.unstrip_protocol(path)
    return path if url.startswith("file://") else url


def join(*parts: str) -> str:
    return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p)


def expand_inputs(patterns: list[str], storage_options: StorageOptions | None = None) -> list[str]:
    """Expand globs into a sorted, de-duplicated list of input URLs; a pattern that matches nothing is an error."""
    found: set[str] = set()
    for pattern in patterns:
        fs, path = filesystem(pattern, storage_options)
        if any(ch in path for ch in "*?["):
            matches = [m for m in fs.glob(path) if fs.isfile(m)]
        else:
            matches = [path] if fs.exists(path) else []
        if not matches:
            raise InputError(f"input {pattern!r} matches no file", "check --input / curate.inputs (a path, glob or URL that exists)")
        found.update(unstrip(fs, m) for m in matches)
    return sorted(found)
