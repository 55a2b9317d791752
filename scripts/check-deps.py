#!/usr/bin/env python3
"""Dependency policy, checked on every test run (docs/adr/0001-crypto-provider.md,
docs/adr/0002-dependency-policy.md):

- no crate under a copyleft licence that would bind Vigil's users (AGPL, GPL, LGPL, SSPL, EUPL),
  unless the crate also offers a permissive alternative ("MIT OR GPL-2.0");
- one crypto provider: aws-lc-rs. `ring`, `openssl` and `openssl-sys` must not enter the build.
"""
import json
import re
import subprocess
import sys

BANNED_CRATES = {
    "ring": "the workspace's one crypto provider is aws-lc-rs (ADR 0001)",
    "openssl": "the workspace's one crypto provider is aws-lc-rs (ADR 0001)",
    "openssl-sys": "the workspace's one crypto provider is aws-lc-rs (ADR 0001)",
}
COPYLEFT = re.compile(r"\b(AGPL|GPL|LGPL|SSPL|EUPL)", re.IGNORECASE)


def licence_ok(expression: str) -> bool:
    """Evaluates an SPDX licence expression: a licence is acceptable unless it is copyleft;
    `A AND B` needs both, `A OR B` (or the legacy `A/B`) needs one; `WITH` exceptions attach
    to their licence."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression.replace("/", " OR "))
    if not tokens:
        return False
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else None

    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]

    def leaf():
        token = take()
        if token == "(":
            value = any_of()
            if take() != ")":
                raise ValueError(expression)
            return value
        if peek() == "WITH":
            take()
            take()
        return not COPYLEFT.search(token)

    def all_of():
        value = leaf()
        while peek() == "AND":
            take()
            value = leaf() and value
        return value

    def any_of():
        value = all_of()
        while peek() == "OR":
            take()
            value = all_of() or value
        return value

    try:
        value = any_of()
    except (IndexError, ValueError):
        return False
    return value and position == len(tokens)


def is_built(name: str) -> bool:
    """Whether `name` is compiled into what Vigil ships (normal and build dependencies of the
    workspace, for this machine). Test-only peers are exempt: rumqttc, the third-party MQTT client
    the interop tests use, brings ring through its own rustls-webpki 0.102 (ADR 0001).
    `cargo metadata` over-approximates (it lists optional crates behind weak features, like ring
    behind rustls-webpki's `ring?/alloc`); `cargo tree` does not."""
    tree = subprocess.run(
        ["cargo", "tree", "--locked", "--workspace", "-e", "normal,build", "-i", name, "--prefix", "none"],
        capture_output=True,
        text=True,
    )
    if tree.returncode != 0:
        if "did not match any packages" in tree.stderr:
            return False
        raise RuntimeError(f"cargo tree failed: {tree.stderr.strip()}")
    return bool(tree.stdout.strip())


def host_target() -> str:
    info = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    return next(line.split(": ", 1)[1] for line in info.splitlines() if line.startswith("host: "))


def main() -> int:
    # Only what builds for this machine: crates that other platforms would pull in (ring for
    # wasm through quinn, say) never enter the binary built here.
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host_target()],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    # Only packages that can actually be built for this workspace (resolved graph).
    resolved = {node["id"] for node in metadata["resolve"]["nodes"]}
    problems = []
    checked = 0
    for package in metadata["packages"]:
        if package["id"] not in resolved or package["source"] is None:
            continue
        checked += 1
        name, version = package["name"], package["version"]
        licence = package.get("license") or ""
        if not licence_ok(licence):
            problems.append(f"{name} {version}: licence {licence or '(none declared)'} is not allowed")
    for name, why in BANNED_CRATES.items():
        if is_built(name):
            problems.append(f"{name}: banned: {why}")
    for problem in problems:
        print(f"dependency policy: {problem}", file=sys.stderr)
    print(f"dependency policy: {checked} crates checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
