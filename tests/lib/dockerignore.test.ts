/** Docker ignore-file rules (via @balena/dockerignore) and which file applies. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { filterFromPatterns, ignoreFileFor, parseIgnoreText } from "../../lib/dockerignore";
import { makeTree } from "./inputs.fixtures";

test("parsing: comments, blank lines, whitespace", () => {
    assert.deepEqual(parseIgnoreText("# c\n\n  a  \r\n!b\n"), ["a", "!b"]);
});

test("matching: last match wins, ! re-includes, ** at any depth, directories exclude their contents", () => {
    const f = filterFromPatterns(["docs", "!docs/keep.md", "**/*.pyc", "/README.md", "*/tmp"]);
    const cases: [string, boolean][] = [
        ["docs", true],
        ["docs/a.md", true],
        ["docs/keep.md", false],
        ["a/b/c.pyc", true],
        ["c.pyc", true],
        ["README.md", true],
        ["sub/README.md", false],
        ["x/tmp/y", true],
        ["tmp/y", false],
    ];
    for (const [p, want] of cases) assert.equal(f.ignores(p), want, p);
    assert.equal(f.hasExceptions, true);
    const g = filterFromPatterns(["!a", "a"]);
    assert.equal(g.ignores("a"), true, "a later exclude wins over an earlier re-include");
});

test("<Dockerfile>.dockerignore next to the Dockerfile wins; else <context>/.dockerignore; else none", () => {
    const dir = makeTree({ "Dockerfile.base.dockerignore": "*\n", ".dockerignore": "x\n", "sub/Dockerfile": "FROM scratch\n" });
    assert.equal(ignoreFileFor(dir, path.join(dir, "Dockerfile.base")), path.join(dir, "Dockerfile.base.dockerignore"));
    assert.equal(ignoreFileFor(dir, path.join(dir, "Dockerfile")), path.join(dir, ".dockerignore"));
    assert.equal(ignoreFileFor(dir, path.join(dir, "sub/Dockerfile")), path.join(dir, ".dockerignore"));
    const bare = makeTree({ Dockerfile: "FROM scratch\n" });
    assert.equal(ignoreFileFor(bare, path.join(bare, "Dockerfile")), undefined);
});
