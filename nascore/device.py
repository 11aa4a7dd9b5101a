"""The one place that turns a device name into a ``torch.device``.

Every torch component takes a ``device`` parameter with the same four forms (CONVENTIONS.md,
"torch code is device-agnostic"): ``auto`` (CUDA when present, else the CPU), ``cpu``,
``cuda`` and ``cuda:N``.  Asking for CUDA on a machine without it is a one-line
:class:`~nascore.errors.ConfigError`, not a torch traceback in the middle of a run.
torch is imported when a device is resolved, not when this module is, so the validator can
sit on parameter declarations that ``nascore --help`` loads.
"""

from __future__ import annotations

from .errors import ConfigError

DEVICE_HELP = "auto (CUDA when available), cpu, cuda or cuda:N"


def _is_device_name(value) -> bool:
    text = str(value)
    return text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit())


def check_device_name(inst, attribute, value) -> None:
    """attrs validator of a ``device`` parameter (``None`` is left to the field's own meaning)."""
    if value is not None and not _is_device_name(value):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")


def resolve_device(device="auto"):
    """``torch.device`` of ``device``: ``"auto"`` (or None) picks CUDA when available, else
    the CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and ``torch.device`` objects are taken as
    they are.  :class:`ConfigError` for any other name, and for CUDA (or a CUDA index) the
    machine does not have."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, torch.device) and not _is_device_name(device):
        raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(device)!r} requested but CUDA is not available; use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(device)!r} requested but this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s); use cuda:0 .. "
                              f"cuda:{torch.cuda.device_count() - 1} or 'auto'")
    return dev


def model_device(model, default="auto"):
    """The device of ``model``'s first parameter (or buffer); ``resolve_device(default)``
    for a module that has neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return resolve_device(default)
