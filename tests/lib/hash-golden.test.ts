/**
 * Golden image hashes: the example app's base and app, and fixtures that reach every kind of
 * record the hash frames (build args, FROM refs, remote sources, bind mounts, executable bits,
 * followed symlinks, copied empty directories, wildcards, ignore files). The expected values were
 * computed by the code before lib/ was laid out by subsystem (commit c3f4086) and must never move:
 * a changed hash rebuilds every user's images and breaks "a build whose tag exists is never
 * repeated". A deliberate change of the hash format changes these values in its own commit, and
 * says so. (The example's values move with examples/django-app itself, by design.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { computeInputs, type InputsArgs } from "../../lib/hashing/inputs";
import { isolateCache, makeTree, type Tree } from "./inputs.fixtures";

isolateCache();
const EXAMPLE = path.resolve(__dirname, "../../examples/django-app");
const BASE_HASH = "c".repeat(64);

interface Case {
    name: string;
    tree?: Tree;
    args: Omit<InputsArgs, "contextDir"> & { contextDir?: string };
    expect: string;
}

const CASES: Case[] = [
    {
        name: "example base",
        args: { role: "base", contextDir: EXAMPLE, dockerfile: "Dockerfile.base", buildArgs: { PYTHON_IMAGE: "python:3.12-slim" }, platform: "linux/amd64" },
        expect: "f6158c16b7246e5e4c78932a93070710d3f26f3b1fc51c7043cf708e8a6feda1",
    },
    {
        name: "example app",
        args: { role: "app", contextDir: EXAMPLE, dockerfile: "Dockerfile", buildArgs: {}, platform: "linux/amd64", baseHash: BASE_HASH },
        expect: "755563e76624079a7b998848203878d035d608f615aa7ca1580b58faa07a0f79",
    },
    {
        name: "args, FROM refs, a remote source, a bind mount, an executable",
        tree: {
            Dockerfile:
                "ARG V=1\nFROM debian@sha256:" +
                "d".repeat(64) +
                " AS b\nADD --checksum=sha256:" +
                "e".repeat(64) +
                " https://example.com/x.tgz /x.tgz\nRUN --mount=type=bind,source=req.txt,target=/r pip install -r /r\nCOPY run.sh /run.sh\n",
            "req.txt": "django==5\n",
            "run.sh": { content: "#!/bin/sh\n", mode: 0o755 },
        },
        args: { role: "base", dockerfile: "Dockerfile", buildArgs: { V: "2", OTHER: "x" }, platform: "linux/arm64" },
        expect: "3c65ab2562bc09dab01f0c56c942b47c62fe40c496c44ecb29ef2fedba9c4881",
    },
    {
        name: "a followed symlink, an empty directory, wildcards, .dockerignore",
        tree: {
            Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY link.txt /app/\nCOPY src/ /app/src/\nCOPY *.cfg /app/\n",
            "real.txt": "content\n",
            "link.txt": { symlink: "real.txt" },
            "src/a.py": "print(1)\n",
            "src/empty/.keep-ignored": "",
            "src/skip.pyc": "x",
            "a.cfg": "a",
            "b.cfg": "b",
            ".dockerignore": "**/*.pyc\n**/.keep-ignored\n",
        },
        args: { role: "app", dockerfile: "Dockerfile", buildArgs: {}, platform: "linux/amd64", baseHash: BASE_HASH },
        expect: "f06e56e9c6fc091381ece463155c4d1a7493b07361fc1afaaf05fec54aa9e9a5",
    },
];

for (const c of CASES) {
    test(`golden hash: ${c.name}`, async () => {
        const contextDir = c.args.contextDir ?? makeTree(c.tree ?? {});
        for (const cache of [false, true, true]) {
            const r = await computeInputs({ ...c.args, contextDir }, { cache });
            assert.equal(r.hash, c.expect, `${c.name} (cache ${cache})`);
        }
    });
}
