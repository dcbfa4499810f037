/** Docker ignore-file rules (via @balena/dockerignore) and which file applies. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { filterFromPatterns, ignoreFileFor, parseIgnoreText } from "../../lib/context/dockerignore";
import { makeTree } from "./inputs.fixtures";

void test("parsing: comments, blank lines, whitespace", () => {
    assert.deepEqual(parseIgnoreText("# c\n\n  a  \r\n!b\n"), ["a", "!b"]);
});

void test("matching: last match wins, ! re-includes, ** at any depth, directories exclude their contents", () => {
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

void test("<Dockerfile>.dockerignore next to the Dockerfile wins; else <context>/.dockerignore; else none", () => {
    const dir = makeTree({ "Dockerfile.base.dockerignore": "*\n", ".dockerignore": "x\n", "sub/Dockerfile": "FROM scratch\n" });
    assert.equal(ignoreFileFor(dir, path.join(dir, "Dockerfile.base")), path.join(dir, "Dockerfile.base.dockerignore"));
    assert.equal(ignoreFileFor(dir, path.join(dir, "Dockerfile")), path.join(dir, ".dockerignore"));
    assert.equal(ignoreFileFor(dir, path.join(dir, "sub/Dockerfile")), path.join(dir, ".dockerignore"));
    const bare = makeTree({ Dockerfile: "FROM scratch\n" });
    assert.equal(ignoreFileFor(bare, path.join(bare, "Dockerfile")), undefined);
});

void test("property: the depth-pruned context walk lists exactly the files a per-path check keeps", async () => {
    const fs = await import("node:fs");
    const fc = (await import("fast-check")).default;
    const { walkDirSync } = await import("../../lib/context/resolve");
    const { filterFromPatterns: mk } = await import("../../lib/context/dockerignore");
    const seg = fc.constantFrom("a", "b", "c.py", "d.md");
    const relPath = fc.array(seg, { minLength: 1, maxLength: 4 }).map((s) => s.join("/"));
    const pattern = fc
        .tuple(fc.boolean(), fc.array(fc.constantFrom("a", "b", "*", "*.py", "c.py", "?", "**", "d.md"), { minLength: 1, maxLength: 3 }))
        .map(([neg, s]) => (neg ? "!" : "") + s.join("/"));
    await fc.assert(
        fc.asyncProperty(fc.uniqueArray(relPath, { minLength: 1, maxLength: 12 }), fc.array(pattern, { maxLength: 4 }), async (paths, patterns) => {
            const dir = makeTree({});
            const files: string[] = [];
            for (const p of paths) {
                // a path can't be both a file and a directory: skip ones that collide
                const abs = path.join(dir, p);
                try {
                    fs.mkdirSync(path.dirname(abs), { recursive: true });
                    if (fs.existsSync(abs)) continue;
                    fs.writeFileSync(abs, p);
                    files.push(p);
                } catch {
                    continue;
                }
            }
            const f = mk(patterns);
            const all: string[] = [];
            const list = (rel: string) => {
                for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
                    const c = rel ? `${rel}/${e.name}` : e.name;
                    if (e.isDirectory()) list(c);
                    else all.push(c);
                }
            };
            list("");
            const want = all.filter((p) => !f.ignores(p)).sort();
            assert.deepEqual(walkDirSync(dir, "", f).sort(), want, JSON.stringify(patterns));
            fs.rmSync(dir, { recursive: true, force: true });
        }),
        { numRuns: 150 },
    );
});
