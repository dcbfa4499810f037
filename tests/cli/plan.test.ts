/** `thinlayer plan` as users run it: the real entry point, as a subprocess, on the real repo. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadStackConfig } from "../../lib/config";
import { computePlan } from "../../lib/plan";
import { cliRunner } from "../helpers/cli";
import { copyDir, isolateCache, tempDir } from "../lib/inputs.fixtures";

const cacheDir = isolateCache();
const REPO = path.resolve(__dirname, "../..");

const thinlayer = cliRunner(cacheDir);

/** A throwaway project: the repo's Pulumi.yaml + one stack file + an app dir. */
function project(stackYaml: string, app?: Record<string, string>): string {
    const dir = tempDir("thinlayer-proj-");
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), stackYaml);
    copyDir(path.join(REPO, "examples/django-app"), path.join(dir, "examples/django-app"));
    for (const [rel, content] of Object.entries(app ?? {})) fs.writeFileSync(path.join(dir, "examples/django-app", rel), content);
    return dir;
}

void test("plan --stack uat --json prints one JSON plan matching computePlan", async () => {
    const r = thinlayer("plan", "--stack", "uat", "--json");
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Awaited<ReturnType<typeof computePlan>> & { status: Record<string, { status: string }> };
    const want = await computePlan(loadStackConfig(REPO, "uat"), { cache: false });
    assert.equal(out.base.tag, want.base.tag);
    assert.equal(out.app.tag, want.app.tag);
    assert.equal(out.migrations.hash, want.migrations.hash);
    assert.equal(out.releaseId, want.releaseId);
    assert.deepEqual(out.app.files, want.app.files);
    assert.equal(out.status.base.status, "unknown");
    assert.equal(out.status.app.status, "unknown");
});

void test("plan --stack uat prints the table; --explain lists input files", async () => {
    const want = await computePlan(loadStackConfig(REPO, "uat"), { cache: false });
    const r = thinlayer("plan", "--stack", "uat");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /IMAGE\s+REPOSITORY:TAG\s+FILES\s+SIZE\s+STATUS/);
    assert.match(r.stdout, new RegExp(`base\\s+thinlayer/base:${want.base.tag}\\s+2\\s+\\d+ B\\s+unknown \\(no registry access\\)`));
    assert.ok(r.stdout.includes(`thinlayer/app:${want.app.tag}`));
    assert.ok(r.stdout.includes(want.migrations.hash));
    assert.ok(r.stdout.includes(want.settings.hash));
    assert.ok(r.stdout.includes(want.releaseId));
    assert.ok(!r.stdout.includes("requirements/production.txt"), "files only with --explain");
    const e = thinlayer("plan", "--stack", "uat", "--explain", "--no-cache");
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /base inputs \(2 files/);
    assert.match(e.stdout, /[0-9a-f]{12} {2}- +\d+ B {2}requirements\/production\.txt/);
    assert.match(e.stdout, /[0-9a-f]{12} {2}x +\d+ B {2}manage\.py/);
    assert.match(e.stdout, /migration inputs \(2 files\)/);
});

void test("an unknown stack names --stack, the value, the stacks that exist and the fix", () => {
    const r = thinlayer("plan", "--stack", "nope");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--stack: got "nope"; expected one of prod, uat\. Fix: /);
    assert.equal(r.stdout, "");
});

void test("a bad config value names the key, the value and what is allowed", () => {
    const dir = project("config:\n  thinlayer:platform: windows\n");
    const r = thinlayer("plan", "--project", dir, "--stack", "t");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /thinlayer:platform: got "windows"; expected os\/arch/);
});

void test("a missing Dockerfile names its path", () => {
    const dir = project("config:\n  thinlayer:baseDockerfile: Dockerfile.missing\n");
    const r = thinlayer("plan", "--project", dir, "--stack", "t");
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(path.join(dir, "examples/django-app/Dockerfile.missing")), r.stderr);
    assert.match(r.stderr, /expected an existing, readable Dockerfile/);
});

void test("a COPY source that matches nothing names Dockerfile:line and the pattern", () => {
    const dir = project("config: {}\n", { Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY static/ /app/static/\n" });
    const r = thinlayer("plan", "--project", dir, "--stack", "t");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Dockerfile:3: got COPY source "static\/", which matches nothing/);
});

void test("bad flags print usage and exit 2", () => {
    const r = thinlayer("plan", "--stack", "uat", "--frobnicate");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: thinlayer plan/);
});

void test("a rollback pin is shown: nothing is built, and how to clear it", () => {
    const ref = `registry.example/thinlayer/app@sha256:${"ab".repeat(32)}`;
    const dir = project(`config:\n  thinlayer:releaseImage: ${ref}\n`);
    const table = thinlayer("plan", "--project", dir, "--stack", "t");
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^base .* pinned \(rollback pin registry\.example\/thinlayer\/app@sha256:(ab){32}: nothing is built\)$/m);
    assert.ok(table.stdout.includes(`PINNED: thinlayer:releaseImage = ${ref}`), table.stdout);
    assert.ok(table.stdout.includes("thinlayer rollback --clear --stack t"), table.stdout);
    const json = JSON.parse(thinlayer("plan", "--project", dir, "--stack", "t", "--json").stdout) as {
        releaseImage: string;
        status: Record<string, { status: string }>;
    };
    assert.equal(json.releaseImage, ref);
    assert.deepEqual([json.status.base.status, json.status.app.status], ["pinned", "pinned"]);
    const unpinned = JSON.parse(thinlayer("plan", "--project", project("config: {}\n"), "--stack", "t", "--json").stdout) as {
        releaseImage: unknown;
        status: Record<string, { status: string }>;
    };
    assert.equal(unpinned.releaseImage, null);
    assert.equal(unpinned.status.app.status, "unknown");
});
