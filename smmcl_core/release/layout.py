"""What the authors' released SMMCL files look like, and the hint every loader prints for one.

torch-free: :func:`smmcl_core.checkpoint.load_checkpoint` uses it to recognise a released
``epoch-N.pth`` handed to it instead of an smmcl checkpoint.
"""

from collections import OrderedDict
from typing import Any, Mapping, Optional

RELEASE_REPOSITORY = 'palmdong/SMMCL'
IMPORT_COMMAND = 'smmcl-import-release'
RELEASE_DATASETS = ('llrgbd', 'mfnet', 'nyudv2')


def strip_module_prefix(state: Mapping[str, Any]) -> 'OrderedDict[str, Any]':
    """Drop a DataParallel ``module.`` prefix from every key that has it."""
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                       for k, v in state.items())


def model_dict(obj: Any) -> Optional[Mapping]:
    """The state dict inside a loaded file (``model`` / ``state_dict`` / bare), or None."""
    if isinstance(obj, Mapping):
        for wrapper in ('model', 'state_dict'):
            if isinstance(obj.get(wrapper), Mapping):
                return obj[wrapper]
        return obj
    return None


def is_release_state(obj: Any) -> bool:
    """True when a loaded file looks like the released engine's checkpoint (or state dict)."""
    state = model_dict(obj)
    if not state:
        return False
    keys = [k[len('module.'):] if k.startswith('module.') else k
            for k in state if isinstance(k, str)]
    return any(k.startswith('backbone.') for k in keys) and \
        any(k.startswith('decode_head.') for k in keys)


def release_hint(path: Any) -> str:
    """The sentence every loader prints when it is handed a released file."""
    return (f"{path} is the authors' released SMMCL training checkpoint ({RELEASE_REPOSITORY} "
            "'epoch-N.pth' layout: 'backbone.*' / 'decode_head.*' weights without this "
            "package's meta), not an smmcl checkpoint; convert it once with: "
            f'{IMPORT_COMMAND} {path} --dataset {{{",".join(RELEASE_DATASETS)}}} '
            '--out MODEL.pth')
