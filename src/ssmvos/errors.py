"""The exception types for errors a user can cause (paths, formats, sizes, masks, calls)."""


class SSMVOSError(Exception):
    """A problem with the user's input: the message names the file or value at fault.

    The command line prints it on one line and exits non-zero, without a traceback.
    """


class SSMVOSValueError(SSMVOSError, ValueError):
    """A bad argument to a call (a frame index outside the video, a mask of the wrong size or
    shape, an object id that is not a whole number >= 0): where SAM 2 raises ValueError."""


class SSMVOSRuntimeError(SSMVOSError, RuntimeError):
    """A call the video's state does not allow now (propagating before any object was
    added, removing an object that does not exist) or a failure while propagating: where
    SAM 2 raises RuntimeError."""
