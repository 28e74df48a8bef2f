"""Dataset errors that say what is wrong and where, so a failed run is fixable from its log."""


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not on disk and could not be downloaded."""


class CorruptDatasetError(ValueError):
    """A dataset file exists but its content is not what its format promises."""
