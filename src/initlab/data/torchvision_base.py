"""Datasets read through torchvision's own classes and on-disk layout, downloaded only when missing."""

import socket
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from initlab.data.base import TensorDataModule
from initlab.data.errors import DatasetNotFoundError
from initlab.data.integrity import verify_md5
from initlab.data.sources import SOURCES, Source, missing_files, not_found_message, unreachable
from initlab.data.splits import TensorSplit, holdout_split, take

# Per socket operation, while downloading: an unreachable network fails in seconds, not minutes.
DOWNLOAD_SOCKET_TIMEOUT_S = 10.0
MD5_ADVICE = "delete it to download it again, or set data.verify_md5=false for files you made yourself"


@contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Temporarily set the default socket timeout (torchvision's downloads set none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


class TorchvisionDataModule(TensorDataModule):
    """torchvision's train set minus a seeded ``val_size`` hold-out; test = torchvision's test set.

    The files are looked for first; only when some are missing and ``download`` is true does
    torchvision try to fetch them. Anything still missing raises one :class:`DatasetNotFoundError`.
    With ``verify_md5`` (the default) every file must then match torchvision's published md5
    before anything parses it; switch it off only for files you made yourself.
    """

    def __init__(self, download: bool = True, val_size: int = 5_000, verify_md5: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if val_size < 1:
            raise ValueError(f"val_size must be >= 1, got {val_size}")
        self.download, self.val_size, self.verify_md5 = download, val_size, verify_md5

    @property
    @abstractmethod
    def folder(self) -> Path:
        """The folder that holds the dataset files in torchvision's layout."""

    @property
    def source(self) -> Source:
        """Folder, files and download hosts of this dataset (:mod:`initlab.data.sources`)."""
        return SOURCES[self.name]

    def missing_files(self) -> list[str]:
        """Names of the expected files absent from :attr:`folder`."""
        return missing_files(self.source, self.root, self.verify_md5)

    @abstractmethod
    def dataset_class(self) -> type:
        """The torchvision dataset class, imported lazily."""

    @abstractmethod
    def expected_md5(self) -> dict[str, str]:
        """File name in :attr:`folder` -> the md5 torchvision publishes for it."""

    def source_files(self) -> list[Path]:
        return [self.folder / name for name in self.expected_md5()]

    def download_files(self) -> None:
        """Fetch the files with torchvision's own download code (which checks the archives' md5)."""
        self.dataset_class()(str(self.root), train=True, download=True)

    @abstractmethod
    def to_split(self, dataset: Any) -> TensorSplit:
        """The whole torchvision dataset (``.data``, ``.targets``) as one tensor split in [0, 1]."""

    def load_split(self, train: bool) -> TensorSplit:
        """torchvision's train or test set, read from files already checked to be present."""
        return self.to_split(self.dataset_class()(str(self.root), train=train, download=False))

    @property
    def cache_name(self) -> str:
        """Files read without the md5 check get their own cache, so a later checked run reads (and checks) them."""
        return f"{super().cache_name}-val{self.val_size}" + ("" if self.verify_md5 else "-unverified")

    def load_raw(self) -> dict[str, TensorSplit]:
        self.ensure_files()
        pool, test = self.load_split(train=True), self.load_split(train=False)
        train, val = take(pool.x, pool.y, holdout_split(len(pool), (self.val_size,), self.seed))
        return {"train": train, "val": val, "test": test}

    def ensure_files(self) -> None:
        """Every file present (downloaded if missing and allowed) and, with ``verify_md5``, intact."""
        if missing := self.missing_files():
            self.fetch(missing)
        if self.verify_md5:
            for name, md5 in self.expected_md5().items():
                verify_md5(self.folder / name, md5, advice=MD5_ADVICE)

    def check_download(self, missing: list[str]) -> None:
        """Raise naming the ``missing`` files unless a download is allowed and a download host answers."""
        if not self.download:
            raise DatasetNotFoundError(self._not_found_message(missing, "download=false"))
        if reason := unreachable(self.source.urls):
            raise DatasetNotFoundError(self._not_found_message(missing, reason))

    def fetch(self, missing: list[str]) -> None:
        """Download the ``missing`` files if allowed and possible, else raise naming them."""
        self.check_download(missing)
        try:
            with socket_timeout(DOWNLOAD_SOCKET_TIMEOUT_S):
                self.download_files()
        except (OSError, RuntimeError) as err:
            message = self._not_found_message(missing, f"the download failed: {type(err).__name__}")
            raise DatasetNotFoundError(message) from err
        if still_missing := self.missing_files():
            raise DatasetNotFoundError(self._not_found_message(still_missing, "the download did not provide them"))

    def _not_found_message(self, missing: list[str], reason: str) -> str:
        return not_found_message(self.name, self.folder, missing, reason)
