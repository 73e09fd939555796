"""What a step raises when it ran and found a problem: the CLI prints the message and exits non-zero."""


class StepFailed(RuntimeError):
    """A step ran and found a problem (failed tests, a failed gate); the message says what."""
