#!/usr/bin/env python3
"""Writes a synthetic monorepo for the plan benchmark.

usage: genconfig.py DIR IMAGES [CHAIN] [--split] [--unread-depends-on]

IMAGES images, each with its own context and Dockerfile, 4 platforms and 3 tag templates. Images
form dependency chains of CHAIN (default 10): every image but a chain's first names the previous
one in a literal FROM line, so the planner infers the edge from the Dockerfile, as in real repos.
Every tenth image also declares depends_on, to exercise both kinds of edge.

With split=True (--split), the root multiarch.toml holds only the defaults and each image has a
multiarch.toml of its own in its directory, as in a monorepo that mab discovers.

With unread=True (--unread-depends-on), every image but the first two declares a depends_on that
its Dockerfile does not read (a chain's first image the previous image, every other image the one
before its parent): a plan with a warning per image, for the cost of warnings.
"""
import os
import sys

def write(out, count, chain=10, split=False, unread=False):
    os.makedirs(out, exist_ok=True)
    lines = [
        "[defaults]",
        'registry  = "registry.example.com/bench"',
        'platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le"]',
        'tags      = ["{{ vars.version }}", "latest", "{{ image.name }}-{{ vars.version }}"]',
        "",
        "[vars]",
        'version = "1.0.0"',
        "",
    ]
    for i in range(count):
        name = f"img{i:05d}"
        ctx = os.path.join(out, "images", name)
        os.makedirs(ctx, exist_ok=True)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            if i % chain == 0:
                f.write("FROM docker.io/library/busybox:1.36\n")
            else:
                f.write(f"FROM registry.example.com/bench/img{i - 1:05d}:1.0.0\n")
            f.write("ARG FLAVOR\nRUN echo $FLAVOR > /flavor\n")
        image = [f"[images.{name}]"]
        if not split:
            image.append(f'context = "images/{name}"')
        image.append('args = { FLAVOR = "{{ image.name }}-{{ platform.arch }}" }')
        image.append('labels = { "org.opencontainers.image.title" = "{{ image.name }}" }')
        if unread:
            # Read by nothing: the Dockerfile reads busybox or the previous image.
            dep = i - 1 if i % chain == 0 else i - 2
            if dep >= 0 and i > 1:
                image.append(f'depends_on = ["img{dep:05d}"]')
        elif i % chain and i % 10 == 5:
            image.append(f'depends_on = ["img{i - 1:05d}"]')
        image.append("")
        if split:
            with open(os.path.join(ctx, "multiarch.toml"), "w") as f:
                f.write("\n".join(image))
        else:
            lines.extend(image)
    with open(os.path.join(out, "multiarch.toml"), "w") as f:
        f.write("\n".join(lines))

if __name__ == "__main__":
    flags = {"--split", "--unread-depends-on"}
    args = [a for a in sys.argv[1:] if a not in flags]
    write(args[0], int(args[1]), int(args[2]) if len(args) > 2 else 10,
          "--split" in sys.argv, "--unread-depends-on" in sys.argv)
