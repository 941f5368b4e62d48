"""Agent ops of the files area (see handlers.py). Each handler: (message, context, connection).

The implementations live in `files_listing`, `files_changes` and `files_transfer` and are imported on
first use, so an agent that never touches files does not pay for them in memory.

| op              | request fields                          | reply                                        |
|-----------------|-----------------------------------------|----------------------------------------------|
| `files.list`    | path, depth?                            | `items` frames of FileInfo, then `result`    |
| `files.info`    | path                                    | `result` with `info` (FileInfo)              |
| `files.search`  | path, pattern (glob on names)           | `items` frames of paths, then `result`       |
| `files.find`    | path, pattern (literal, in contents)    | `items` frames of {file, line, content}      |
| `files.mkdir`   | path, mode?                             | `result`                                     |
| `files.delete`  | path, recursive?                        | `result`                                     |
| `files.move`    | source, destination                     | `result`                                     |
| `files.chmod`   | path, mode?, owner?, group?             | `result`                                     |
| `files.replace` | files, pattern, newValue                | `items` frames of {file, success, error?}    |
| `files.write`   | path, mode? then chunks (files_transfer) | `ready`, ..., `result` with path and size   |
| `files.read`    | path                                    | `ready` with size, chunks, `result`          |

Paths may be relative (to the workdir). Failures are error frames with FILE_NOT_FOUND,
FILE_ACCESS_DENIED, INVALID_FILE_PATH, FILE_EXISTS, DIRECTORY_NOT_EMPTY, NO_SPACE,
FILE_OPERATION_FAILED or BAD_REQUEST.
"""
from __future__ import annotations


def _list(message: dict, context, connection) -> None:
    from .files_listing import list_files

    list_files(message, context, connection)


def _info(message: dict, context, connection) -> None:
    from .files_listing import file_info

    file_info(message, context, connection)


def _search(message: dict, context, connection) -> None:
    from .files_listing import search_files

    search_files(message, context, connection)


def _find(message: dict, context, connection) -> None:
    from .files_listing import find_in_files

    find_in_files(message, context, connection)


def _mkdir(message: dict, context, connection) -> None:
    from .files_changes import create_folder

    create_folder(message, context, connection)


def _delete(message: dict, context, connection) -> None:
    from .files_changes import delete

    delete(message, context, connection)


def _move(message: dict, context, connection) -> None:
    from .files_changes import move

    move(message, context, connection)


def _chmod(message: dict, context, connection) -> None:
    from .files_changes import set_permissions

    set_permissions(message, context, connection)


def _replace(message: dict, context, connection) -> None:
    from .files_changes import replace_in_files

    replace_in_files(message, context, connection)


def _write(message: dict, context, connection) -> None:
    from .files_transfer import write_file

    write_file(message, context, connection)


def _read(message: dict, context, connection) -> None:
    from .files_transfer import read_file

    read_file(message, context, connection)


HANDLERS: dict = {
    "files.list": _list,
    "files.info": _info,
    "files.search": _search,
    "files.find": _find,
    "files.mkdir": _mkdir,
    "files.delete": _delete,
    "files.move": _move,
    "files.chmod": _chmod,
    "files.replace": _replace,
    "files.write": _write,
    "files.read": _read,
}
