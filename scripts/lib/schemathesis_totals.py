"""Totals of `make schemathesis`, read from schemathesis's own summary.

    schemathesis_totals.py ROLE LOG      one line: role, operations, cases, failures, errors
    schemathesis_totals.py --table FILE  those lines as a table, with a total row
"""
import re
import sys


def totals(role: str, log: str) -> str:
    text = open(log, encoding="utf-8", errors="replace").read()
    tested = re.search(r"^\s*Tested: (\d+)", text, re.M)
    cases = re.search(r"^\s*(\d+) generated(.*)$", text, re.M)
    generated = int(cases.group(1)) if cases else 0
    rest = cases.group(2) if cases else ""
    unique = re.search(r"found (\d+) unique failure", rest)
    errored = re.search(r"(\d+) errored", rest)
    failing = re.search(r", (\d+) found", rest)
    return "\t".join(
        [
            role,
            tested.group(1) if tested else "0",
            str(generated),
            failing.group(1) if failing else "0",
            unique.group(1) if unique else "0",
            errored.group(1) if errored else "0",
        ]
    )


def table(path: str) -> None:
    rows = [line.rstrip("\n").split("\t") for line in open(path, encoding="utf-8") if line.strip()]
    head = ["role", "operations", "test cases", "failing cases", "unique failures", "errored"]
    sums = ["total"] + [str(sum(int(r[i]) for r in rows)) for i in range(1, len(head))]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows + [sums]:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        table(sys.argv[2])
    else:
        print(totals(sys.argv[1], sys.argv[2]))
