/**
 * Image input hashing on real files in temp dirs: what changes a hash and what must not.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import fc from "fast-check";
import { computeAppInputs, computeBaseInputs } from "../../lib/plan";
import { hashFiles } from "../../lib/hashing/filehash";
import { ThinlayerError } from "../../lib/errors";
import { isolateCache, makeTree, tempDir, writeTree, type Tree } from "./inputs.fixtures";

isolateCache();
const PLATFORM = "linux/amd64";
const NO_CACHE = { cache: false };

async function base(dir: string, dockerfile = "Dockerfile.base", buildArgs: Record<string, string> = {}, platform = PLATFORM) {
    return computeBaseInputs({ contextDir: dir, dockerfile: path.join(dir, dockerfile), buildArgs, platform }, NO_CACHE);
}
async function app(dir: string, baseHash: string, dockerfile = "Dockerfile") {
    return computeAppInputs({ contextDir: dir, dockerfile: path.join(dir, dockerfile), buildArgs: {}, platform: PLATFORM, baseHash }, NO_CACHE);
}

const PROJECT: Tree = {
    "Dockerfile.base": "FROM python:3.12-slim\nCOPY requirements/ /tmp/requirements/\nRUN pip install -r /tmp/requirements/base.txt\n",
    Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n",
    ".dockerignore": ".git\nREADME.md\n**/*.pyc\n",
    "requirements/base.txt": "Django==5.1.4\n",
    "app/views.py": "def index(): pass\n",
    "app/models.py": "class M: pass\n",
    "manage.py": { content: "#!/usr/bin/env python\n", mode: 0o755 },
    "README.md": "# hi\n",
};

void test("same tree at two paths, created in different orders, with different umask-style modes: same hashes", async () => {
    await fc.assert(
        fc.asyncProperty(fc.shuffledSubarray(Object.keys(PROJECT), { minLength: Object.keys(PROJECT).length }), async (order) => {
            const a = makeTree(PROJECT);
            const b = path.join(tempDir(), "some", "deeper", "checkout");
            fs.mkdirSync(b, { recursive: true });
            writeTree(b, PROJECT, order);
            // umask 077 would give 0600/0700 instead of 0644/0755
            for (const f of ["app/views.py", "README.md", "requirements/base.txt"]) fs.chmodSync(path.join(b, f), 0o600);
            fs.chmodSync(path.join(b, "manage.py"), 0o700);
            const [ba, bb] = [await base(a), await base(b)];
            assert.equal(ba.hash, bb.hash);
            assert.equal((await app(a, ba.hash)).hash, (await app(b, bb.hash)).hash);
        }),
        { numRuns: 8 },
    );
});

void test("two real git clones with umask 022 and 077 at different paths give the same hashes", async (t) => {
    const src = makeTree(PROJECT);
    const git = (cwd: string, ...args: string[]) => {
        const r = spawnSync("git", args, {
            cwd,
            encoding: "utf8",
            env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" },
        });
        assert.equal(r.status, 0, r.stderr);
    };
    git(src, "init", "-q");
    git(src, "add", ".");
    git(src, "commit", "-qm", "init");
    const clones = [
        ["022", path.join(tempDir(), "a")],
        ["077", path.join(tempDir(), "x", "y", "b")],
    ] as const;
    const hashes: string[] = [];
    for (const [umask, dest] of clones) {
        const r = spawnSync("sh", ["-c", `umask ${umask} && git clone -q "$0" "$1"`, src, dest], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        const b = await base(dest);
        hashes.push(`${b.hash}/${(await app(dest, b.hash)).hash}`);
    }
    const mode = fs.statSync(path.join(clones[1][1], "app/views.py")).mode & 0o777;
    t.diagnostic(`umask 077 clone mode: ${mode.toString(8)}`);
    assert.equal(mode & 0o077, 0, "the 077 clone really has different mode bits");
    assert.equal(hashes[0], hashes[1]);
});

void test("a context that includes .git gets a warning (its contents differ per clone)", async () => {
    const dir = makeTree({ ...PROJECT, ".dockerignore": "README.md\n", ".git/HEAD": "ref: refs/heads/main\n" });
    const b = await base(dir);
    const r = await app(dir, b.hash);
    assert.ok(r.files.some((f) => f.path === ".git/HEAD"));
    assert.ok(
        r.warnings.some((w) => w.includes(".git") && w.includes(".dockerignore")),
        r.warnings.join("\n"),
    );
    assert.ok(!b.warnings.some((w) => w.includes(".git")));
});

void test("hashFiles returns the same list whatever order paths are discovered in", async () => {
    const dir = makeTree(PROJECT);
    const paths = ["app/views.py", "app/models.py", "manage.py", "requirements/base.txt"];
    const ref = await hashFiles(dir, paths, NO_CACHE);
    await fc.assert(
        fc.asyncProperty(fc.shuffledSubarray(paths, { minLength: paths.length }), async (order) => {
            assert.deepEqual(await hashFiles(dir, order, NO_CACHE), ref);
        }),
        { numRuns: 20 },
    );
});

void test("a rename changes the hash; a content edit changes it", async () => {
    const dir = makeTree(PROJECT);
    const b0 = await base(dir);
    const a0 = await app(dir, b0.hash);
    fs.renameSync(path.join(dir, "app/views.py"), path.join(dir, "app/views2.py"));
    assert.notEqual((await app(dir, b0.hash)).hash, a0.hash);
    fs.renameSync(path.join(dir, "app/views2.py"), path.join(dir, "app/views.py"));
    assert.equal((await app(dir, b0.hash)).hash, a0.hash, "renaming back restores the hash");
    fs.writeFileSync(path.join(dir, "app/views.py"), "def index(): return 1\n");
    assert.notEqual((await app(dir, b0.hash)).hash, a0.hash);
});

void test("mode changes other than the executable bit do not change the hash; the executable bit does", async () => {
    const dir = makeTree(PROJECT);
    const b0 = await base(dir);
    const h0 = (await app(dir, b0.hash)).hash;
    fs.chmodSync(path.join(dir, "app/views.py"), 0o664);
    fs.chmodSync(path.join(dir, "manage.py"), 0o711);
    assert.equal((await app(dir, b0.hash)).hash, h0);
    fs.chmodSync(path.join(dir, "app/views.py"), 0o744);
    assert.notEqual((await app(dir, b0.hash)).hash, h0);
    const mtime = new Date(2001, 1, 1);
    fs.chmodSync(path.join(dir, "app/views.py"), 0o644);
    fs.utimesSync(path.join(dir, "app/views.py"), mtime, mtime);
    assert.equal((await app(dir, b0.hash)).hash, h0, "mtime is not part of the hash");
});

void test("an ignored file does not change the hash; an unignored one does", async () => {
    const dir = makeTree(PROJECT);
    const b0 = await base(dir);
    const a0 = await app(dir, b0.hash);
    assert.ok(!a0.files.some((f) => f.path === "README.md"));
    fs.writeFileSync(path.join(dir, "README.md"), "# changed\n");
    fs.writeFileSync(path.join(dir, "app/cache.pyc"), "bytecode");
    assert.equal((await app(dir, b0.hash)).hash, a0.hash);
    fs.writeFileSync(path.join(dir, "NOTES.txt"), "x");
    assert.notEqual((await app(dir, b0.hash)).hash, a0.hash);
});

void test("a file outside every base COPY source leaves the base hash alone but changes the app hash", async () => {
    const dir = makeTree(PROJECT);
    const b0 = await base(dir);
    const a0 = await app(dir, b0.hash);
    fs.writeFileSync(path.join(dir, "app/models.py"), "class M: x = 1\n");
    const b1 = await base(dir);
    assert.equal(b1.hash, b0.hash);
    assert.notEqual((await app(dir, b1.hash)).hash, a0.hash);
});

void test("a new file inside a copied directory changes the hash, and the base hash flows into the app hash", async () => {
    const dir = makeTree(PROJECT);
    const b0 = await base(dir);
    const a0 = await app(dir, b0.hash);
    fs.writeFileSync(path.join(dir, "requirements/extra.txt"), "celery\n");
    const b1 = await base(dir);
    assert.notEqual(b1.hash, b0.hash);
    assert.ok(b1.files.some((f) => f.path === "requirements/extra.txt"));
    assert.notEqual((await app(dir, b1.hash)).hash, a0.hash, "new base means new app");
});

void test("build args, platform and FROM references are part of the base hash", async () => {
    const dir = makeTree({ ...PROJECT, "Dockerfile.base": "ARG PY=python:3.12-slim\nFROM ${PY}\nARG EXTRA\nCOPY requirements/ /r/\n" });
    const h = (await base(dir)).hash;
    assert.notEqual((await base(dir, "Dockerfile.base", { EXTRA: "1" })).hash, h);
    assert.notEqual((await base(dir, "Dockerfile.base", {}, "linux/arm64")).hash, h);
    const r = await base(dir, "Dockerfile.base", { PY: "python:3.13-slim" });
    assert.notEqual(r.hash, h);
    assert.ok(
        r.warnings.some((w) => w.includes("FROM python:3.13-slim is a mutable tag")),
        r.warnings.join("\n"),
    );
});

void test("multi-stage: COPY --from=<stage> reads no context files; only context COPYs count", async () => {
    const dir = makeTree({
        "Dockerfile.base": [
            "FROM python:3.12-slim AS build",
            "COPY requirements/base.txt /r.txt",
            "RUN pip wheel -r /r.txt -w /wheels",
            "FROM python:3.12-slim",
            "COPY --from=build /wheels /wheels",
            "COPY --from=build /app/views.py /nope",
            "",
        ].join("\n"),
        "requirements/base.txt": "Django\n",
        "requirements/other.txt": "x\n",
        "app/views.py": "v\n",
    });
    const r = await base(dir);
    assert.deepEqual(
        r.files.map((f) => f.path),
        ["requirements/base.txt"],
    );
    assert.equal(r.copyOnly, false);
    const h = r.hash;
    fs.writeFileSync(path.join(dir, "app/views.py"), "changed\n");
    fs.writeFileSync(path.join(dir, "requirements/other.txt"), "changed\n");
    assert.equal((await base(dir)).hash, h);
});

void test("wildcard COPY follows Go filepath.Match: * stays within one path segment, [..] classes, matched dirs expand", async () => {
    const dir = makeTree({
        "Dockerfile.base": "FROM scratch\nCOPY requirements/*.txt conf/[ab]?.ini pkg* /x/\n",
        "requirements/base.txt": "1",
        "requirements/prod.txt": "2",
        "requirements/nested/deep.txt": "3",
        "requirements/notes.md": "4",
        "conf/a1.ini": "5",
        "conf/b2.ini": "6",
        "conf/c3.ini": "7",
        "conf/a12.ini": "8",
        "pkgs/one/x.py": "9",
        "pkg.cfg": "10",
    });
    const r = await base(dir);
    assert.deepEqual(
        r.files.map((f) => f.path),
        ["conf/a1.ini", "conf/b2.ini", "pkg.cfg", "pkgs/one/x.py", "requirements/base.txt", "requirements/prod.txt"],
    );
    const h = r.hash;
    fs.writeFileSync(path.join(dir, "requirements/nested/deep.txt"), "changed");
    fs.writeFileSync(path.join(dir, "conf/c3.ini"), "changed");
    assert.equal((await base(dir)).hash, h);
    fs.writeFileSync(path.join(dir, "requirements/new.txt"), "new");
    assert.notEqual((await base(dir)).hash, h);
});

void test("! re-includes a file inside an excluded directory; ** matches at any depth", async () => {
    const dir = makeTree({
        Dockerfile: "FROM scratch\nCOPY . /app\n",
        ".dockerignore": "docs\n!docs/keep.md\n**/secret.txt\n",
        "docs/a.md": "a",
        "docs/keep.md": "k",
        "src/secret.txt": "s",
        "src/deep/er/secret.txt": "s",
        "src/main.py": "m",
    });
    const r = await computeBaseInputs({ contextDir: dir, dockerfile: path.join(dir, "Dockerfile"), buildArgs: {}, platform: PLATFORM }, NO_CACHE);
    assert.deepEqual(
        r.files.map((f) => f.path),
        [".dockerignore", "Dockerfile", "docs/keep.md", "src/main.py"],
    );
});

void test("<Dockerfile>.dockerignore takes precedence over .dockerignore", async () => {
    const dir = makeTree({
        "Dockerfile.base": "FROM scratch\nCOPY . /x\n",
        "Dockerfile.base.dockerignore": "*\n!requirements/*.txt\n",
        ".dockerignore": "requirements\n",
        "requirements/base.txt": "r",
        "requirements/x.md": "m",
        "app.py": "a",
    });
    const r = await base(dir);
    assert.deepEqual(
        r.files.map((f) => f.path),
        ["requirements/base.txt"],
    );
    fs.writeFileSync(path.join(dir, "app.py"), "changed");
    fs.writeFileSync(path.join(dir, ".dockerignore"), "nothing\n");
    assert.equal((await base(dir)).hash, r.hash, "the shared .dockerignore is not consulted");
    fs.rmSync(path.join(dir, "Dockerfile.base.dockerignore"));
    const r2 = await base(dir);
    assert.ok(
        r2.files.some((f) => f.path === "app.py"),
        "without its own ignore file the shared one applies",
    );
});

void test("remote ADD is hashed by its URL, with a warning; --checksum silences the warning", async () => {
    const dir = makeTree({ "Dockerfile.base": "FROM scratch\nADD https://example.com/a.tgz /a.tgz\n" });
    const r = await base(dir);
    assert.equal(r.files.length, 0);
    assert.ok(
        r.warnings.some((w) => w.includes("Dockerfile.base:2") && w.includes("https://example.com/a.tgz") && w.includes("not its content")),
        r.warnings.join("\n"),
    );
    fs.writeFileSync(path.join(dir, "Dockerfile.base"), "FROM scratch\nADD https://example.com/b.tgz /a.tgz\n");
    assert.notEqual((await base(dir)).hash, r.hash);
    fs.writeFileSync(path.join(dir, "Dockerfile.base"), `FROM scratch\nADD --checksum=sha256:${"a".repeat(64)} https://example.com/b.tgz /a.tgz\n`);
    assert.ok(!(await base(dir)).warnings.some((w) => w.includes("not its content")));
});

void test("a COPY source that matches nothing is an error naming Dockerfile:line and the pattern; a wildcard may match nothing, as in BuildKit", async () => {
    const dir = makeTree({ "Dockerfile.base": "FROM scratch\n\nCOPY requirements/base.txt /r/\n", "requirements/x.md": "m" });
    await assert.rejects(base(dir), (e: Error) => {
        assert.ok(e instanceof ThinlayerError);
        assert.match(e.message, /Dockerfile\.base:3: got COPY source "requirements\/base\.txt"/);
        assert.match(e.message, /Fix: /);
        return true;
    });
    // The `yarn.loc[k]` idiom: copy the lockfile if there is one. BuildKit allows an empty wildcard.
    const idiom = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY package.json yarn.loc[k] /app/\n", "package.json": "{}" });
    const r = await base(idiom);
    assert.deepEqual(
        r.files.map((f) => f.path),
        ["package.json"],
    );
    assert.deepEqual(r.warnings, []);
    fs.writeFileSync(path.join(idiom, "yarn.lock"), "# lock\n");
    assert.notEqual((await base(idiom)).hash, r.hash, "the lockfile counts once it exists");
    // Every source of a COPY an empty wildcard: allowed, with a warning; a builder builds such an app image.
    const none = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY *.whl /wheels/\n", "x.txt": "x" });
    assert.match((await base(none)).warnings.join("\n"), /Dockerfile\.base:2: COPY \*\.whl matches nothing \(allowed for wildcards/);
    const dir2 = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY secret.txt /s\n", "secret.txt": "s", ".dockerignore": "secret.txt\n" });
    await assert.rejects(base(dir2), /Dockerfile\.base:2: got COPY source "secret\.txt".*after .*\.dockerignore/);
});

void test("a missing Dockerfile, or one without FROM, is an error naming its path", async () => {
    const dir = makeTree({ "x.txt": "x" });
    await assert.rejects(
        base(dir),
        (e: Error) =>
            e instanceof ThinlayerError && e.message.includes(path.join(dir, "Dockerfile.base")) && /expected an existing, readable Dockerfile/.test(e.message),
    );
    fs.writeFileSync(path.join(dir, "Dockerfile.base"), "COPY x.txt /x\n");
    await assert.rejects(base(dir), /Dockerfile\.base: got \(no FROM instruction\)/);
});

void test("CRLF is not normalized: the bytes as checked out are hashed (see README)", async () => {
    const dir = makeTree({ ...PROJECT, "app/views.py": "a\nb\n" });
    const b = await base(dir);
    const lf = (await app(dir, b.hash)).hash;
    fs.writeFileSync(path.join(dir, "app/views.py"), "a\r\nb\r\n");
    assert.notEqual((await app(dir, b.hash)).hash, lf);
});

void test("symlinks are hashed as links (by target), not followed", async () => {
    const dir = makeTree({ Dockerfile: "FROM scratch\nCOPY . /x\n", "real.txt": "r", "link.txt": { symlink: "real.txt" } });
    const r = await computeBaseInputs({ contextDir: dir, dockerfile: path.join(dir, "Dockerfile"), buildArgs: {}, platform: PLATFORM }, NO_CACHE);
    const h = r.hash;
    fs.writeFileSync(path.join(dir, "real.txt"), "changed");
    const r2 = await computeBaseInputs({ contextDir: dir, dockerfile: path.join(dir, "Dockerfile"), buildArgs: {}, platform: PLATFORM }, NO_CACHE);
    assert.notEqual(r2.hash, h);
    assert.equal(r2.files.find((f) => f.path === "link.txt")?.sha256, r.files.find((f) => f.path === "link.txt")?.sha256);
});

void test("the app hash is copy-only when the app Dockerfile only copies onto ${BASE_IMAGE}", async () => {
    const dir = makeTree(PROJECT);
    const b = await base(dir);
    assert.equal((await app(dir, b.hash)).copyOnly, true);
    fs.writeFileSync(path.join(dir, "Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\nRUN python -m compileall /app\n");
    assert.equal((await app(dir, b.hash)).copyOnly, false);
    fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM python:3.12\nCOPY . /app\n");
    const r = await app(dir, b.hash);
    assert.equal(r.copyOnly, false);
    assert.ok(r.warnings.some((w) => w.includes("does not start FROM ${BASE_IMAGE}")));
});

void test("RUN --mount=type=bind sources are hashed like COPY sources (ignore file applies; no match names Dockerfile:line)", async () => {
    const df =
        "FROM python:3.12-slim\nWORKDIR /app\nRUN --mount=type=cache,target=/root/.cache/pip \\\n    --mount=type=bind,source=requirements.txt,target=requirements.txt \\\n    python -m pip install -r requirements.txt\n";
    const dir = makeTree({ "Dockerfile.base": df, "requirements.txt": "Django==5.1.4\n", "other.txt": "o" });
    const r1 = await base(dir);
    assert.deepEqual(
        r1.files.map((f) => f.path),
        ["requirements.txt"],
    );
    fs.writeFileSync(path.join(dir, "requirements.txt"), "Django==5.1.5\n");
    assert.notEqual((await base(dir)).hash, r1.hash, "editing a bind-mounted file changes the hash");
    fs.writeFileSync(path.join(dir, "other.txt"), "changed");
    fs.writeFileSync(path.join(dir, "requirements.txt"), "Django==5.1.4\n");
    assert.equal((await base(dir)).hash, r1.hash, "files the RUN does not mount do not count");

    const whole = makeTree({ "Dockerfile.base": "FROM scratch\nRUN --mount=target=/src make\n", "a.c": "a", "secret.key": "k", ".dockerignore": "*.key\n" });
    assert.deepEqual((await base(whole)).files.map((f) => f.path).sort(), [".dockerignore", "Dockerfile.base", "a.c"]);

    const stage = makeTree({
        "Dockerfile.base": "FROM scratch AS b\nFROM scratch\nRUN --mount=type=bind,from=b,source=/x,target=/x --mount=type=secret,id=t true\n",
        x: "x",
    });
    assert.deepEqual((await base(stage)).files, []);

    const missing = makeTree({ "Dockerfile.base": "FROM scratch\n\nRUN --mount=type=bind,source=req.txt,target=/r true\n" });
    await assert.rejects(base(missing), /Dockerfile\.base:3: got RUN --mount=type=bind source "req\.txt", which matches nothing/);
});

void test("COPY --exclude is not modelled: the app is not copy-only, the plan warns, and the excluded files are still hashed (more, never fewer)", async () => {
    const dir = makeTree({ ...PROJECT, Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY --exclude=*.key . /app/\n", "tls.key": "k1" });
    const b = await base(dir);
    const r = await app(dir, b.hash);
    assert.equal(r.copyOnly, false);
    assert.ok(
        r.warnings.some((w) => /Dockerfile:3: COPY --exclude=\*\.key is not modelled/.test(w)),
        r.warnings.join("\n"),
    );
    assert.ok(r.files.some((f) => f.path === "tls.key"));
    fs.writeFileSync(path.join(dir, "tls.key"), "k2");
    assert.notEqual((await app(dir, b.hash)).hash, r.hash);
});

void test("a symlink named directly as a COPY source is hashed by its target's content (resolved inside the context); links inside a copied directory stay links", async () => {
    const dir = makeTree({
        "Dockerfile.base": "FROM scratch\nCOPY current.txt /a\nCOPY abs.txt /b\n",
        "releases/v1.txt": "one\n",
        "current.txt": { symlink: "releases/v1.txt" },
        "abs.txt": { symlink: "/releases/v1.txt" }, // BuildKit resolves absolute links from the context root
    });
    const r1 = await base(dir);
    assert.deepEqual(
        r1.files.map((f) => f.path),
        ["releases/v1.txt"],
    );
    fs.writeFileSync(path.join(dir, "releases/v1.txt"), "ONE\n");
    const r2 = await base(dir);
    assert.notEqual(r2.hash, r1.hash, "the target's content is an input");
    fs.rmSync(path.join(dir, "current.txt"));
    fs.writeFileSync(path.join(dir, "current.txt"), "ONE\n");
    assert.notEqual((await base(dir)).hash, r2.hash, "a regular file with the same content is a different input (names differ)");

    const inside = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY releases/ /r/\n", "releases/v1.txt": "one\n", "releases/current": { symlink: "v1.txt" } });
    const r3 = await base(inside);
    assert.deepEqual(
        r3.files.map((f) => f.path),
        ["releases/current", "releases/v1.txt"],
    );
    fs.rmSync(path.join(inside, "releases/current"));
    fs.symlinkSync("v2.txt", path.join(inside, "releases/current"));
    assert.notEqual((await base(inside)).hash, r3.hash, "a link in a copied directory is hashed by its text");
});

void test("a source reached through a symlink that leaves the context is an error naming Dockerfile:line, not the host's files", async () => {
    const outside = makeTree({ "secret.txt": "host file\n", "conf/app.conf": "host conf\n" });
    const cases: [string, string][] = [
        ["COPY linkdir /x", "a named source linking to a host directory"],
        ["COPY linkfile /x", "a named source linking to a host file (nothing of that name inside the context)"],
        ["COPY linkdir/conf/app.conf /x", "a path through a symlinked parent"],
        ["COPY linkdir/conf/*.conf /x/", "a wildcard through a symlinked parent"],
    ];
    for (const [line, what] of cases) {
        const dir = makeTree({
            "Dockerfile.base": `FROM scratch\n${line}\n`,
            linkdir: { symlink: outside },
            linkfile: { symlink: path.join(outside, "secret.txt") },
        });
        await assert.rejects(base(dir), (e: unknown) => {
            assert.ok(e instanceof ThinlayerError, what);
            assert.match(e.message, /Dockerfile\.base:2/, what);
            assert.match(e.message, /this machine follows to .*, while Docker, which resolves links inside the build context/, what);
            assert.match(e.message, /make the link relative/, what);
            return true;
        });
    }
    // A relative link to a directory inside the context is fine, and reads the context's files.
    const ok = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY cfg /x\n", "real/app.conf": "in context\n", cfg: { symlink: "real" } });
    assert.deepEqual(
        (await base(ok)).files.map((f) => f.path),
        ["cfg/app.conf"],
    );
});

void test("links resolved the BuildKit way: wildcards never enter links, matches and named sources are followed in the context", async () => {
    const outside = makeTree({ "conf/app.conf": "host conf\n", "host.env": "SECRET=1\n" });
    // The literal directories before the first wildcard are followed: leaving the context is an error.
    const prefixOut = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY linkdir/conf/*.conf /x/\n", linkdir: { symlink: outside } });
    await assert.rejects(base(prefixOut), /this machine follows to/);
    // From the first wildcard on, matching does not enter symlinks: nothing matches through them.
    for (const line of ["COPY l*/conf/app.conf /x", "COPY l*/conf /x/", "COPY */conf/app.conf /x/"]) {
        const dir = makeTree({ "Dockerfile.base": `FROM scratch\n${line}\n`, linkdir: { symlink: outside }, "real/conf/app.conf": "in context\n" });
        const r = await base(dir);
        assert.deepEqual(
            r.files.map((f) => f.path),
            line.startsWith("COPY */") ? ["real/conf/app.conf"] : [],
            line,
        );
    }
    const apps = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY apps/*/dist /srv/\n", "apps/web/dist/i.js": "i", "apps/ext": { symlink: outside } });
    assert.deepEqual(
        (await base(apps)).files.map((f) => f.path),
        ["apps/web/dist/i.js"],
    );
    // Links the ignore file excludes are not in the context: a wildcard passing them is fine.
    const ignored = makeTree({
        "Dockerfile.base": "FROM scratch\nCOPY */*.txt /x/\n",
        ".dockerignore": ".env\ndata\n",
        "app/requirements.txt": "django\n",
        ".env": { symlink: path.join(outside, "host.env") },
        data: { symlink: outside },
    });
    assert.deepEqual(
        (await base(ignored)).files.map((f) => f.path),
        ["app/requirements.txt"],
    );
    // A final match that is a link is followed: a link to a directory in the context is walked.
    const rel = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY l* /x/\n", "real/a.txt": "a", linkdir: { symlink: "real" } });
    assert.deepEqual(
        (await base(rel)).files.map((f) => f.path),
        ["linkdir/a.txt"],
    );
    // An absolute link that reaches a context file only by this machine's path: Docker resolves it
    // from the context root, to nothing.
    const absInto = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY cfgdir /x/\n", "real/app.conf": "c" });
    fs.symlinkSync(path.join(absInto, "real"), path.join(absInto, "cfgdir"));
    await assert.rejects(base(absInto), /follows it to nothing/);
    // The context itself reached through a symlink: nothing changes.
    const real = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY src /x/\nCOPY s*/a.py /y/\n", "src/a.py": "a" });
    const viaLink = path.join(tempDir(), "ctx-link");
    fs.symlinkSync(real, viaLink);
    assert.equal((await base(viaLink)).hash, (await base(real)).hash);
});

void test("a wildcard match that is a symlink to a file is followed: its target's content is an input, and a builder builds the app", async () => {
    const dir = makeTree({
        "Dockerfile.base": "FROM scratch\nCOPY config/*.yaml /etc/app/\n",
        Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY config/*.yaml /etc/app/\n",
        "config/dev.yaml": "dev\n",
        "shared/prod.yaml": "prod: 1\n",
        "config/prod.yaml": { symlink: "../shared/prod.yaml" },
    });
    const r1 = await base(dir);
    assert.deepEqual(
        r1.files.map((f) => f.path),
        ["config/dev.yaml", "shared/prod.yaml"],
    );
    fs.writeFileSync(path.join(dir, "shared/prod.yaml"), "prod: 2\n");
    assert.notEqual((await base(dir)).hash, r1.hash, "editing the target rebuilds");
    const a = await app(dir, r1.hash);
    assert.equal(a.copyOnly, false, "the daemonless writer does not place followed links: a builder builds it");
    assert.match(a.warnings.join("\n"), /Dockerfile:3: COPY config\/\*\.yaml matches symlinks \(config\/prod\.yaml\)/);
});

void test("a link into an ignored path leads to nothing for the build: an error, never the ignored file", async () => {
    for (const [line, tree, want] of [
        ["COPY lnk/secret.env /app/", { lnk: { symlink: "data" } }, /matches nothing in the build context .* after .*\.dockerignore/],
        [
            "COPY token /app/",
            { token: { symlink: "data/secret.env" } },
            /data\/secret\.env, where it leads, is excluded by the ignore file.*Fix: remove that path's exclusion/,
        ],
        ["COPY lnk /app/", { lnk: { symlink: "data" } }, /data, where it leads, is excluded by the ignore file/],
    ] as const) {
        const dir = makeTree({ "Dockerfile.base": `FROM scratch\n${line}\n`, "data/secret.env": "S=1\n", ".dockerignore": "data\n", ...tree });
        await assert.rejects(base(dir), want, line);
    }
});

void test("the ignore file applies to real paths, as the build context holds them; a source through a link is a builder's job", async () => {
    // A linked prefix: files are filtered where they really are.
    const rel = makeTree({
        "Dockerfile.base": "FROM scratch\nCOPY current/* /srv/\n",
        Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY current/* /srv/\n",
        ".dockerignore": "releases/**/*.log\ncurrent/extra.py\n",
        "releases/v2/app.py": "app",
        "releases/v2/debug.log": "log",
        "releases/v2/extra.py": "extra",
        current: { symlink: "releases/v2" },
    });
    const r = await base(rel);
    assert.deepEqual(
        r.files.map((f) => f.path),
        ["current/app.py", "current/extra.py"],
        "debug.log is not in the context; current/extra.py names no real path",
    );
    const a = await app(rel, r.hash);
    assert.equal(a.copyOnly, false);
    assert.match(a.warnings.join("\n"), /Dockerfile:3: COPY current\/\* goes through a symlink/);
    // An ignored link is not in the context, whatever `!` re-includes elsewhere.
    const ignoredLink = makeTree({
        "Dockerfile.base": "FROM scratch\nCOPY lnk /x/\n",
        ".dockerignore": "lnk\n!keep\n",
        "real/a": "a",
        keep: "k",
        lnk: { symlink: "real" },
    });
    await assert.rejects(base(ignoredLink), /matches nothing/);
});

void test("a wildcard whose literal directory is missing or ignored fails, as the build does; a dangling link match fails", async () => {
    const missing = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY package.json fixtures/*.sh /app/\n", "package.json": "{}" });
    await assert.rejects(base(missing), /Dockerfile\.base:2: got COPY source "fixtures\/\*\.sh", which matches nothing/);
    const ignored = makeTree({
        "Dockerfile.base": "FROM scratch\nCOPY package.json fixtures/*.sh /app/\n",
        "package.json": "{}",
        "fixtures/a.sh": "a",
        ".dockerignore": "fixtures\n",
    });
    await assert.rejects(base(ignored), /fixtures\/\*\.sh/);
    const dangling = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY c/*.yaml /x/\n", "c/a.yaml": "a", "c/b.yaml": { symlink: "nope.yaml" } });
    await assert.rejects(base(dangling), /c\/b\.yaml goes through a symlink .* follows it to nothing \(the link leads nowhere in the context\)/);
});

void test("the hash does not depend on the order a directory lists its entries (followed links included)", async (t) => {
    const tree = {
        "Dockerfile.base": "FROM scratch\nCOPY config/*.yaml /etc/app/\n",
        "shared/a.yaml": "a",
        "shared/b.yaml": "b",
        "config/a.yaml": { symlink: "../shared/a.yaml" },
        "config/b.yaml": { symlink: "../shared/b.yaml" },
        "config/c.yaml": "c",
    } as const;
    const dir = makeTree(tree);
    const forward = (await base(dir)).hash;
    // Another filesystem may list entries in another order: reverse every listing.
    const nodeFs = createRequire(__filename)("node:fs") as typeof fs;
    const real = nodeFs.readdirSync.bind(nodeFs) as (p: fs.PathLike, o: { withFileTypes: true }) => fs.Dirent[];
    t.mock.method(nodeFs, "readdirSync", (p: fs.PathLike, o: { withFileTypes: true }) => [...real(p, o)].reverse());
    assert.equal((await base(dir)).hash, forward);
});

void test("empty directories are copied too: they are in the hash, and a builder builds an app image that has them", async () => {
    const dir = makeTree({
        "Dockerfile.base": "FROM scratch\nCOPY . /app/\n",
        Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY src /srv/\n",
        "src/a.py": "a",
    });
    const before = await base(dir);
    fs.mkdirSync(path.join(dir, "src/media"));
    const after = await base(dir);
    assert.notEqual(after.hash, before.hash, "an added empty directory is an input");
    assert.deepEqual(
        after.files.map((f) => f.path),
        before.files.map((f) => f.path),
    );
    const a = await app(dir, after.hash);
    assert.equal(a.copyOnly, false);
    assert.match(a.warnings.join("\n"), /Dockerfile:3: COPY src copies empty directories \(src\/media\)/);
    // A named empty directory is copied as one (no "matches nothing").
    const empty = makeTree({ "Dockerfile.base": "FROM scratch\nCOPY e /d/\n" });
    fs.mkdirSync(path.join(empty, "e"));
    assert.deepEqual((await base(empty)).files, []);
});

void test("a wildcard COPY to a destination without a trailing slash is a builder's job (file or directory depends on the matches)", async () => {
    const dir = makeTree({ "Dockerfile.base": "FROM scratch\n", Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY *.txt /dst\n", "a.txt": "a" });
    const b = await base(dir);
    const a = await app(dir, b.hash);
    assert.equal(a.copyOnly, false);
    assert.match(a.warnings.join("\n"), /Dockerfile:3: COPY with a wildcard source and a destination without a trailing slash \(\/dst\)/);
    fs.writeFileSync(path.join(dir, "Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY *.txt /dst/\n");
    assert.equal((await app(dir, b.hash)).copyOnly, true);
});
