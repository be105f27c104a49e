"""Writing a file so that no reader ever sees it half-written: the scripts' results go to a
temporary file beside the target first, then are renamed over it."""
import json
import math
import os


def replace_atomically(path, write):
    """Calls write(tmp) to fill a temporary file beside path, then renames it over path; a
    write that fails leaves path as it was and no temporary file behind."""
    tmp = path + ".tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_atomically(path, text):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    replace_atomically(path, write)


def json_safe(value):
    """value with every non-finite float (NaN, infinity) as None, which strict JSON can hold."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json_atomically(path, doc):
    """doc as indented, strict JSON (json_safe), written atomically."""
    write_atomically(path, json.dumps(json_safe(doc), indent=2) + "\n")
