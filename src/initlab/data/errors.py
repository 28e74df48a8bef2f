"""Dataset errors that say what is wrong and where, so a failed run is fixable from its log."""


class DatasetError(Exception):
    """A dataset that cannot be used as configured: the user's to fix, so the apps exit 2 with its message."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The dataset's files are not on disk and could not be downloaded."""


class CorruptDatasetError(DatasetError, ValueError):
    """A dataset file exists but its content is not what its format promises."""
