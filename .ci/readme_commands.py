"""Print the README's set-up commands, one per line: the lines of its first fenced code block
(comments and blank lines left out). CI runs each of them exactly as written.

    python3 .ci/readme_commands.py README.md
"""
import sys


def commands(text: str) -> list[str]:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("```")), None)
    if start is None:
        raise SystemExit("README has no fenced code block")
    out = []
    for line in lines[start + 1:]:
        if line.startswith("```"):
            return out
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.strip())
    raise SystemExit("README's first code block is not closed")


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        print("\n".join(commands(fh.read())))
