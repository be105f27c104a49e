"""Writing a file so that no reader ever sees it half-written: the scripts' results go to a
temporary file beside the target first, then are renamed over it."""
import os


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
