"""Storage credentials in the pipeline config: references, never values (README "Credentials").

``PipelineConfig.storage_options`` is validated into ``Credential`` placeholders
(``kurate.storage.fs``) and serialized with references only, so a flow run's parameters in the
Prefect database, a served deployment's defaults and a Ray Job's spec file hold ``{prefect_secret:
NAME}``, ``{env: VAR}`` or ``{file: PATH}`` — or nothing, where s3fs finds ``AWS_*`` variables or the
AWS credentials file on the machine itself. A ``{prefect_secret: NAME}`` reference is read from the
Prefect API (a ``Secret`` block) by whichever process opens the filesystem first.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, PlainSerializer

from kurate.errors import InputError
from kurate.storage.fs import credential_references, wrap_credentials


def read_prefect_secret(name: str) -> str:
    """The value of the Prefect ``Secret`` block ``name`` (the Prefect API of this process)."""
    from prefect.blocks.system import Secret

    try:
        return Secret.load(name, _sync=True).get()
    except ValueError as exc:
        raise InputError(f"storage credential {{prefect_secret: {name}}}: {exc}",
                         f"create it: prefect block create secret (or Secret(value=…).save({name!r})) on the Prefect API "
                         "this stage talks to") from None


def _wrap(options: dict) -> dict:
    return wrap_credentials(options, {"prefect_secret": read_prefect_secret})


# dict[protocol, fsspec options]; sensitive values are Credentials in memory and references on the wire
StorageOptionsField = Annotated[
    dict[str, dict[str, Any]],
    AfterValidator(_wrap),
    PlainSerializer(credential_references, return_type=dict[str, dict[str, Any]], when_used="json"),
]
