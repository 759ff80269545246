"""Compiles every ```qd block of the given Markdown files with qdsl, so that
the documentation's examples stay valid as the language changes."""
import os
import re
import subprocess
import sys
import tempfile


def main():
    qdsl, files = sys.argv[1], sys.argv[2:]
    count = 0
    failures = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for match in re.finditer(r"```qd\n(.*?)```", text, re.S):
            line = text.count("\n", 0, match.start()) + 1
            with tempfile.NamedTemporaryFile("w", suffix=".qd", delete=False,
                                             encoding="utf-8") as tmp:
                tmp.write(match.group(1))
            result = subprocess.run([qdsl, "stats", tmp.name],
                                    capture_output=True, text=True)
            os.unlink(tmp.name)
            count += 1
            if result.returncode != 0:
                failures.append(f"{path}:{line}: example does not compile:\n"
                                f"{result.stderr}")
    for failure in failures:
        print(failure, file=sys.stderr)
    print(f"{count} examples, {len(failures)} failing")
    return 1 if failures or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
