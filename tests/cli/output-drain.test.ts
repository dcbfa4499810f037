/**
 * Every byte a command writes reaches a pipe, however slowly the reader drains it: the CLI must not
 * exit while stdout still holds queued output (a 1.38 MB plan once came out as exactly 128 KiB).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { isolateCache, tempDir } from "../lib/inputs.fixtures";

const cacheDir = isolateCache();
const REPO = path.resolve(__dirname, "../..");
const FILES = 6000;

let made: string | undefined;

/** A project whose app image copies FILES files, so `plan --json` prints megabytes (made once). */
function bigProject(): string {
    if (made !== undefined) return made;
    const dir = tempDir("thinlayer-bigplan-");
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), "config:\n  thinlayer:appDir: app\n");
    const app = path.join(dir, "app");
    fs.mkdirSync(path.join(app, "requirements"), { recursive: true });
    fs.writeFileSync(path.join(app, "requirements", "production.txt"), "django==5.1.4\n");
    fs.writeFileSync(path.join(app, "Dockerfile.base"), "FROM python:3.12-slim\nCOPY requirements/ /tmp/requirements/\n");
    fs.writeFileSync(path.join(app, "Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n");
    fs.writeFileSync(path.join(app, "manage.py"), "print('hi')\n");
    fs.mkdirSync(path.join(app, "records", "migrations"), { recursive: true });
    fs.writeFileSync(path.join(app, "records", "migrations", "0001_initial.py"), "# initial\n");
    for (let d = 0; d < FILES / 100; d++) {
        const sub = path.join(app, "src", `package_${String(d).padStart(3, "0")}`);
        fs.mkdirSync(sub, { recursive: true });
        for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(sub, `module_with_a_long_name_${i}.py`), `x = ${d * 100 + i}\n`);
    }
    return (made = dir);
}

let runs = 0;

/** Runs `thinlayer <args>` with stdout into a pipe whose reader waits a second before reading. */
function throughSlowPipe(dir: string, args: string[]): { code: number; out: string; stderr: string } {
    const run = ++runs;
    const out = path.join(dir, `stdout-${run}.txt`);
    const codeFile = path.join(dir, `code-${run}.txt`);
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const cmd = `{ ${[process.execPath, path.join(REPO, "bin/thinlayer.js"), ...args].map(q).join(" ")}; echo $? > ${q(codeFile)}; } | { sleep 1; cat > ${q(out)}; }`;
    const r = spawnSync("/bin/sh", ["-c", cmd], { encoding: "utf8", env: { ...process.env, THINLAYER_CACHE_DIR: cacheDir }, timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    return { code: Number(fs.readFileSync(codeFile, "utf8").trim()), out: fs.readFileSync(out, "utf8"), stderr: r.stderr };
}

void test("plan --json piped into a slow reader: the whole plan arrives, then the process exits 0", () => {
    const dir = bigProject();
    const r = throughSlowPipe(dir, ["plan", "--project", dir, "--stack", "t", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.out.length > 1_000_000, `expected a plan over 1 MB, got ${r.out.length} bytes`);
    const plan = JSON.parse(r.out) as { app: { files: unknown[] } };
    assert.ok(plan.app.files.length > FILES, `app files: ${plan.app.files.length}`);
});

void test("plan --explain (the table) piped into a slow reader arrives whole", () => {
    const dir = bigProject();
    const r = throughSlowPipe(dir, ["plan", "--project", dir, "--stack", "t", "--explain"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.out.length > 400_000, `expected over 400 KB, got ${r.out.length} bytes`);
    assert.match(r.out, /\ncomputed in \d+ ms, offline.*\n$/, "ends with the last line of the table");
});

void test("through the same pipe, an error still exits with its code and its message", () => {
    const dir = bigProject();
    const r = throughSlowPipe(dir, ["plan", "--project", dir, "--stack", "nope"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--stack: got "nope"/);
    assert.equal(r.out, "");
});
