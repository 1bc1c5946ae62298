"""The one exception type for errors a user can cause (paths, formats, sizes, masks)."""


class SSMVOSError(Exception):
    """A problem with the user's input: the message names the file or value at fault.

    The command line prints it on one line and exits non-zero, without a traceback.
    """
