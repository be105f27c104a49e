"""Writing a file so that no reader ever sees it half-written: the scripts' results go to a
temporary file beside the target first, then are renamed over it."""
import json
import math
import os


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


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
