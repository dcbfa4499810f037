/** Dockerfile analysis (pure) and Go filepath.Match semantics. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { analyzeDockerfile } from "../../lib/dockerfile/analyze";
import { expand } from "../../lib/dockerfile/words";
import { goMatch } from "../../lib/context/pathmatch";
import { cleanSource } from "../../lib/context/resolve";

void test("stages and FROM references with ARG substitution (global ARGs, build-arg overrides, stage refs excluded)", () => {
    const text = [
        "ARG PY=3.12",
        "ARG REG=docker.io/library",
        "FROM ${REG}/python:${PY}-slim AS build",
        "FROM build AS test",
        "FROM --platform=linux/arm64 alpine:3.20",
        "COPY --from=build /a /a",
        "COPY --from=busybox:1.36 /bin/busybox /bin/",
        "",
    ].join("\n");
    const a = analyzeDockerfile(text, "Dockerfile", { PY: "3.13" });
    assert.deepEqual(
        a.stages.map((s) => [s.name, s.from, s.line]),
        [
            ["build", "docker.io/library/python:3.13-slim", 3],
            ["test", "build", 4],
            [undefined, "alpine:3.20", 5],
        ],
    );
    assert.equal(a.stages[2].platform, "linux/arm64");
    assert.deepEqual(a.fromRefs, ["docker.io/library/python:3.13-slim", "alpine:3.20", "busybox:1.36"]);
    assert.deepEqual(a.copies, []);
    assert.equal(a.copyOnly, false);
});

void test("COPY/ADD sources: shell and JSON forms, flags, variables, heredocs", () => {
    const text = [
        "FROM scratch",
        "ARG DIR=src",
        "ENV CONF=conf",
        'COPY --chown=app:app --chmod=644 ["a b.txt", "${DIR}/x.py", "/dst/"]',
        "COPY $DIR/*.py ${CONF}/ \\",
        "     /app/",
        "COPY <<EOF /etc/motd",
        "hello",
        "EOF",
        "ADD data.tar.gz /data/",
        "",
    ].join("\n");
    const a = analyzeDockerfile(text, "Dockerfile", {});
    assert.deepEqual(
        a.copies.map((c) => [c.keyword, c.line, c.sources, c.dest, c.chown, c.chmod]),
        [
            ["COPY", 4, ["a b.txt", "src/x.py"], "/dst/", "app:app", "644"],
            ["COPY", 5, ["src/*.py", "conf/"], "/app/", undefined, undefined],
            ["ADD", 10, ["data.tar.gz"], "/data/", undefined, undefined],
        ],
    );
    assert.equal(a.copyOnly, false, "ADD may extract archives");
    assert.equal(
        analyzeDockerfile('ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nWORKDIR /app\nCOPY . /app\nUSER 10001\nCMD ["x"]\n', "D", {
            BASE_IMAGE: "b@sha256:" + "0".repeat(64),
        }).copyOnly,
        true,
    );
});

void test("variable expansion: defaults, alternates, quotes, escapes", () => {
    const vars = new Map([
        ["A", "1"],
        ["E", ""],
    ]);
    assert.equal(expand("${A}-$A-${B:-x}-${E:-y}-${E-z}-${A:+alt}-${B:+alt}", vars), "1-1-x-y--alt-");
    assert.equal(expand("'$A'\"$A\"\\$A", vars), "$A1$A");
});

void test("Go filepath.Match semantics", () => {
    const cases: [string, string, boolean][] = [
        ["*.txt", "a.txt", true],
        ["*.txt", "d/a.txt", false],
        ["d/*", "d/a", true],
        ["d/*", "d/a/b", false],
        ["?.py", "a.py", true],
        ["?.py", "ab.py", false],
        ["[ab]*", "apple", true],
        ["[^ab]*", "apple", false],
        ["[^ab]*", "cherry", true],
        ["[a-c]x", "bx", true],
        ["[a-c]x", "dx", false],
        ["\\*x", "*x", true],
        ["\\*x", "ax", false],
        ["{a,b}", "a", false],
        ["{a,b}", "{a,b}", true],
        ["a*/b", "abc/b", true],
        ["*", ".hidden", true],
    ];
    for (const [p, n, want] of cases) assert.equal(goMatch(p, n), want, `${p} vs ${n}`);
    assert.throws(() => goMatch("[a", "a"));
});

void test("property: a pattern without metacharacters matches exactly itself", () => {
    fc.assert(
        fc.property(fc.stringMatching(/^[a-z0-9._/-]{1,20}$/), fc.stringMatching(/^[a-z0-9._/-]{1,20}$/), (p, n) => {
            assert.equal(goMatch(p, n), p === n);
        }),
    );
});

void test("COPY sources are cleaned and kept inside the context", () => {
    assert.equal(cleanSource("./a/../b/"), "b");
    assert.equal(cleanSource("../../etc/passwd"), "etc/passwd");
    assert.equal(cleanSource("/abs/x"), "abs/x");
    assert.equal(cleanSource("."), "");
});

void test("a malformed COPY is an input error naming file:line", () => {
    assert.throws(
        () => analyzeDockerfile("FROM scratch\n\nCOPY onlyone\n", "app/Dockerfile", {}),
        /app\/Dockerfile:3: got a malformed COPY; expected COPY \[--chown=…\] <src>\.\.\. <dest>/,
    );
});

void test("RUN --mount: bind mounts without from= read the context; from=<image> is a FROM reference; other types read nothing", () => {
    const text = [
        "ARG REQ=requirements.txt",
        "FROM python:3.12 AS build",
        "ARG REQ",
        "RUN --mount=type=bind,source=${REQ},target=requirements.txt pip install -r requirements.txt",
        "RUN --mount=target=/src,ro --mount=type=cache,target=/root/.cache true",
        'RUN --mount=type=bind,"src=a,b.txt",dst=/x --mount=type=secret,id=tok --mount=type=ssh --mount=type=tmpfs,target=/t true',
        "RUN --mount=type=bind,from=build,source=/out,target=/o --mount=type=bind,from=busybox:1.36,source=/bin,target=/b true",
        "",
    ].join("\n");
    const a = analyzeDockerfile(text, "Dockerfile", {});
    assert.deepEqual(a.bindMounts, [
        { line: 4, source: "requirements.txt", target: "requirements.txt" },
        { line: 5, source: ".", target: "/src" },
        { line: 6, source: "a,b.txt", target: "/x" },
    ]);
    assert.deepEqual(a.fromRefs, ["python:3.12", "busybox:1.36"]);
    assert.equal(a.copyOnly, false);
    assert.deepEqual(analyzeDockerfile("FROM scratch\nRUN true\n", "D", {}).bindMounts, []);
    assert.throws(
        () => analyzeDockerfile("FROM scratch\nRUN --mount=type=volume,target=/v true\n", "D", {}),
        /D:2 RUN --mount: got "type=volume,target=\/v"; expected type=bind\|cache\|tmpfs\|secret\|ssh/,
    );
});

void test("COPY/ADD flags thinlayer does not model (--exclude, --parents, COPY --checksum) make the Dockerfile not copy-only, with a warning naming Dockerfile:line and the flag", () => {
    const head = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n";
    const args = { BASE_IMAGE: "b@sha256:" + "0".repeat(64) };
    const modelled = analyzeDockerfile(head + "COPY --link --chown=1:1 --chmod=644 a /a\n", "app/Dockerfile", args);
    assert.equal(modelled.copyOnly, true);
    assert.deepEqual(modelled.warnings, []);
    const a = analyzeDockerfile(head + "COPY --exclude=*.key --parents . /app/\n", "app/Dockerfile", args);
    assert.equal(a.copyOnly, false);
    assert.deepEqual(a.notCopyOnly, ["app/Dockerfile:3: COPY --exclude=*.key", "app/Dockerfile:3: COPY --parents"]);
    assert.equal(a.warnings.length, 2);
    assert.match(a.warnings[0], /^app\/Dockerfile:3: COPY --exclude=\*\.key is not modelled/);
    assert.match(a.warnings[1], /^app\/Dockerfile:3: COPY --parents is not modelled/);
    assert.deepEqual(
        a.copies.map((c) => c.sources),
        [["."]],
        "the sources are still hashed (all of them)",
    );
    assert.equal(analyzeDockerfile(head + `COPY --checksum=sha256:${"a".repeat(64)} a /a\n`, "D", args).copyOnly, false, "--checksum is an ADD flag");
});
