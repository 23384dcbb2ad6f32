"""What a served model accepts, and how a request becomes its command's inputs and options.

A command is served when its task's table gives it ``records`` (``rnnkit.tasks.base.Command``).
Its request body is ``{"inputs": [...], "options": {...}, "stream": false}``: the options are the
command's own dataclass fields, less those only the machine running it may set
(``machine_only``: files there, its devices), as a pydantic model made from the dataclass, so
that a wrong name or type is refused before the model sees it and OpenAPI documents each one.

Inputs are text, or for commands whose inputs are files (``Command.inputs == "file"``: a
recording, an image, a CSV, a MIDI prime) an upload ``{"name": "clip.wav", "data": BASE64}``,
written to a temporary folder of the server's for the command to read. A request never names
a path of the server's.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import tempfile
import typing
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import pydantic

from rnnkit.errors import UserError
from rnnkit.tasks.base import Command, Task
from rnnkit.train.session import Session


@dataclass(frozen=True)
class Limits:
    """What one request may ask; each refused with a message naming the limit (and its flag)."""

    max_body_bytes: int = 16 * 1024 * 1024
    """Request body, in bytes (413 above)."""
    max_inputs: int = 64
    """Inputs per request."""
    max_input_chars: int = 10_000
    """Characters of a text input."""
    max_generated: int = 2_000
    """What a generate command produces per input (a language model's --length, music's --steps)."""

    def validate(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) <= 0:
                raise UserError(f"--{field.name.replace('_', '-')}: expected a positive integer, got "
                                f"{getattr(self, field.name)}")


class RequestError(Exception):
    """A request that cannot be answered as asked: an HTTP status and one line saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Upload(pydantic.BaseModel):
    """A file sent as an input: its name (its suffix says its format) and its bytes in base64."""

    model_config = pydantic.ConfigDict(extra="forbid")
    name: str = pydantic.Field(description="The file's name, e.g. clip.wav (its suffix says its format).")
    data: str = pydantic.Field(description="The file's bytes, base64-encoded.")


class Outputs(pydantic.BaseModel):
    outputs: list[dict[str, Any]] = pydantic.Field(
        description="One record per input, in order: what 'rnnkit predict --format jsonl' prints for it "
                    "({\"error\": ...} in place of an input that cannot be read).")


def _field_description(options_class: type, name: str) -> str | None:
    try:  # the field's docstring, as 'rnnkit COMMAND --help' shows it
        from tyro._docstrings import get_field_docstring

        return get_field_docstring(options_class, name, ())
    except Exception:  # a private helper of tyro's: without it, the documentation has no descriptions
        return None


def served_options(command: Command) -> dict[str, tuple[type, Any]]:
    """The options a request may set: (type, default) by name, in the dataclass's order."""
    hints = typing.get_type_hints(command.options, include_extras=False)
    return {field.name: (hints[field.name], field.default) for field in dataclasses.fields(command.options)
            if field.name not in command.options.machine_only}


def options_model(name: str, command: Command) -> type[pydantic.BaseModel]:
    """A pydantic model of the options a request may set (strict types, unknown names refused)."""
    fields = {option: (kind, pydantic.Field(default, description=_field_description(command.options, option)))
              for option, (kind, default) in served_options(command).items()}
    return pydantic.create_model(name, __config__=pydantic.ConfigDict(extra="forbid", strict=True), **fields)


def request_model(name: str, command: Command, options: type[pydantic.BaseModel]) -> type[pydantic.BaseModel]:
    one_input = (str | Upload) if command.inputs == "file" else str
    input_help = ("an upload {name, data} (or \"\" where the command can start from nothing)"
                  if command.inputs == "file" else "a text, as one line of 'rnnkit predict --file'")
    return pydantic.create_model(
        name,
        __config__=pydantic.ConfigDict(extra="forbid", strict=True),
        inputs=(list[one_input], pydantic.Field(min_length=1, description=f"The inputs, each {input_help}.")),
        options=(options, pydantic.Field(default_factory=options, description="The command's options.")),
        stream=(bool, pydantic.Field(False, description="Answer as server-sent events, piece by piece (one input; "
                                                        "commands that stream)")),
    )


class ServedModel:
    """One trained run as the server uses it: its id, task and session, and the commands it serves."""

    def __init__(self, model_id: str, task: Task, session: Session, limits: Limits) -> None:
        self.id, self.task, self.session, self.limits = model_id, task, session, limits
        self.commands = {name: command for name, command in task.commands.items() if command.records is not None}
        title = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", model_id))  # OpenAPI's model names
        self.options_models = {name: options_model(f"{title}{name.capitalize()}Options", command)
                               for name, command in self.commands.items()}
        self.request_models = {name: request_model(f"{title}{name.capitalize()}Request", command,
                                                   self.options_models[name])
                               for name, command in self.commands.items()}

    def describe(self) -> dict:
        """This model as ``GET /v1/models`` lists it."""
        return {"id": self.id, "task": self.task.name, "summary": self.task.summary,
                "commands": {name: {"summary": command.summary, "inputs": command.inputs,
                                    "stream": command.stream is not None,
                                    "options": self.options_models[name].model_json_schema()["properties"]}
                             for name, command in self.commands.items()}}

    def command(self, name: str) -> Command:
        if name not in self.commands:
            served = ", ".join(self.commands) or "none"
            raise RequestError(404, f"model {self.id!r} ({self.task.name}) has no command {name!r}; it serves: {served}")
        return self.commands[name]

    def options(self, command_name: str, given: pydantic.BaseModel) -> tuple[object, str]:
        """The command's options dataclass with the request's values over its defaults (checked by its validate),
        and a key equal for equal options: requests with the same key can share a forward pass."""
        command = self.commands[command_name]
        values = given.model_dump()
        length = command.generated_length
        if length is not None and length not in given.model_fields_set:  # a default over the limit becomes the limit
            values[length] = min(values[length], self.limits.max_generated)
        if length is not None and values[length] > self.limits.max_generated:
            raise RequestError(422, f"options.{length}: {values[length]} is over the server's limit of "
                                    f"{self.limits.max_generated} (--max-generated)")
        options = command.options(checkpoint=self.id, **values)
        if "batch_size" in {field.name for field in dataclasses.fields(options)}:
            options.batch_size = self.limits.max_inputs  # what one job may bring; the batcher caps the merged size
        validate = getattr(options, "validate", None)
        try:
            if validate is not None:
                validate()
        except UserError as error:
            raise RequestError(422, f"options: {error}") from None
        return options, json.dumps(values, sort_keys=True)

    def inputs(self, command_name: str, given: list, folder: tempfile.TemporaryDirectory | None) -> tuple[list, dict]:
        """The inputs as the command reads them (an upload becomes the path of its file in ``folder``), and the
        names of those files by path (the records say the upload's name, not the server's path)."""
        if len(given) > self.limits.max_inputs:
            raise RequestError(422, f"inputs: {len(given)} inputs, more than the server's limit of "
                                    f"{self.limits.max_inputs} per request (--max-inputs)")
        command, inputs, names = self.commands[command_name], [], {}
        for number, one in enumerate(given, start=1):
            if isinstance(one, Upload):
                path = self._written(one, number, folder)
                inputs.append(path)
                names[path] = one.name
            elif command.inputs == "file" and one != "":
                raise RequestError(422, f"inputs[{number - 1}]: this command reads files; send the file itself as "
                                        "{\"name\": \"clip.wav\", \"data\": BASE64} (the server never opens a path "
                                        "named in a request)")
            elif len(one) > self.limits.max_input_chars:
                raise RequestError(422, f"inputs[{number - 1}]: {len(one)} characters, more than the server's limit "
                                        f"of {self.limits.max_input_chars} (--max-input-chars)")
            else:
                inputs.append(one)
        return inputs, names

    @staticmethod
    def _written(upload: Upload, number: int, folder) -> str:
        try:
            data = base64.b64decode(upload.data, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(422, f"inputs[{number - 1}].data: not base64; send the file's bytes base64-encoded") from None
        # The upload's own name (a series is named after its file), cut to safe characters, in a folder of its own.
        name = re.sub(r"[^A-Za-z0-9._-]", "_", PurePath(upload.name.replace("\\", "/")).name).lstrip(".")[-100:]
        path = Path(folder.name) / str(number) / (name or "input")
        path.parent.mkdir()
        path.write_bytes(data)
        return str(path)


def renamed(value, names: dict[str, str]):
    """``value`` (a record) with every upload's path, wherever a string holds it (an error message too), replaced by
    the upload's name."""
    if isinstance(value, str):
        for path, name in names.items():
            value = value.replace(path, name)
        return value
    if isinstance(value, dict):
        return {key: renamed(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [renamed(item, names) for item in value]
    return value

