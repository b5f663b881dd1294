"""The data folder (``var/`` or ``$HVWEB_DATA_DIR``) is readable by its owner only.

It holds the SQLite database (API tokens, session keys), the secret key, the demo
logins and the embedded Redis's socket. The folder is made 0700 and every file in
it 0600, also when an older version left them open: :func:`secure` tightens them
whenever the settings load, so at every start.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def secure(folder: Path) -> None:
    """Create ``folder`` 0700 if missing; tighten it and its entries if open.

    Entries directly inside are tightened (files 0600, folders 0700); what lies
    deeper is out of other users' reach once the folder itself is 0700. Entries
    that belong to another user are left alone.
    """
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    _tighten(folder, FOLDER_MODE)
    for entry in os.scandir(folder):
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except FileNotFoundError:  # gone meanwhile (a SQLite -shm file, say)
            continue
        if stat.S_ISDIR(mode):
            _tighten(Path(entry.path), FOLDER_MODE)
        elif not stat.S_ISLNK(mode):
            _tighten(Path(entry.path), FILE_MODE)


def private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists.

    For the SQLite database: SQLite creates its ``-wal`` and ``-journal`` files
    with the database file's permissions (``findCreateFileMode`` in SQLite's
    ``src/os_unix.c``) and its ``-shm`` file likewise (``unixOpenSharedMemory``),
    so a private database keeps its journal private too. An empty file is a
    valid, empty SQLite database.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass


def _tighten(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.lstat().st_mode)
        if current & ~mode:
            path.chmod(current & mode)
    except (FileNotFoundError, PermissionError):
        pass
