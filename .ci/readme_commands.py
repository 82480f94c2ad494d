"""Print the README's first two commands (the first two lines of its first
```sh block), one per line: what .ci/run runs and the tests check."""
import sys


def readme_commands(path: str) -> list[str]:
    lines = open(path, encoding="utf-8").read().splitlines()
    start = lines.index("```sh") + 1
    block = lines[start:lines.index("```", start)]
    return [line for line in block if line.strip()][:2]


if __name__ == "__main__":
    print("\n".join(readme_commands(sys.argv[1] if len(sys.argv) > 1 else "README.md")))
