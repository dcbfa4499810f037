/**
 * `thinlayer plan` shows the migrations a deploy would apply, each with its class and the
 * operations that decided it (text and --json): the example app with the makemigrations RemoveField
 * added, compared with nothing, with its git target branch, and acknowledged in the stack file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import type { MigrationSafety } from "../../lib/migrations";
import { cliRunner } from "../helpers/cli";
import { copyDir, isolateCache, tempDir } from "../lib/inputs.fixtures";

const cacheDir = isolateCache();
const REPO = path.resolve(__dirname, "../..");
const REMOVE_ID = "records.0002_remove_encounter_notes";
const FIXTURE = path.join(REPO, "tests/fixtures/migrations/example-remove-field/records/migrations/0002_remove_encounter_notes.py");

const thinlayer = cliRunner(cacheDir);

/** A project (Pulumi.yaml + Pulumi.t.yaml) in a git repo whose main branch holds the example app; the RemoveField added on a branch. */
function project(stackExtra = ""): { dir: string; app: string } {
    const dir = tempDir("thinlayer-plan-migrations-");
    const app = path.join(dir, "app");
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), `config:\n  thinlayer:appDir: app\n${stackExtra}`);
    copyDir(path.join(REPO, "examples/django-app"), app);
    const git = (...args: string[]) =>
        execFileSync("git", args, {
            cwd: dir,
            env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com" },
        });
    git("init", "-q", "-b", "main");
    git("add", ".");
    git("commit", "-q", "-m", "app");
    git("checkout", "-q", "-b", "drop-notes");
    fs.copyFileSync(FIXTURE, path.join(app, "records/migrations/0002_remove_encounter_notes.py"));
    return { dir, app };
}

void test("plan --against <target branch> shows the RemoveField migration as contract, BLOCKED, with its operation and fix", () => {
    const { dir } = project();
    const r = thinlayer("plan", "--stack", "t", "--project", dir, "--against", "main");
    assert.equal(r.code, 0, r.stderr);
    const section = r.stdout.slice(r.stdout.indexOf("migrations to apply"));
    const lines = section.split("\n");
    assert.equal(lines[0], "migrations to apply (compared with git main: 1 of 2 to apply):");
    assert.match(lines[1], /^ {2}records\.0002_remove_encounter_notes {2}contract {2}BLOCKED$/);
    assert.equal(
        lines[2],
        "      RemoveField encounter.notes (line 13): drops column encounter.notes: the serving release still selects it (Django names every column)",
    );
    assert.match(lines[3], /^ {8}fix: expand\/contract: first deploy code that no longer uses the field/);
    assert.equal(
        lines[4],
        "  gate: BLOCKED — `pulumi preview/up --stack t` fails until each is split into expand/contract steps or acknowledged in Pulumi.t.yaml:",
    );
    assert.equal(lines[5], `      thinlayer:acknowledgedMigrations: [${REMOVE_ID}]`);
});

void test("plan --json carries the migration safety report", () => {
    const { dir } = project();
    const r = thinlayer("plan", "--stack", "t", "--project", dir, "--against", "main", "--json");
    assert.equal(r.code, 0, r.stderr);
    const s = (JSON.parse(r.stdout) as { migrationSafety: MigrationSafety }).migrationSafety;
    assert.deepEqual(s.baseline, { kind: "deployed", source: "git main", ids: ["records.0001_initial"] });
    assert.deepEqual(
        s.migrations.map((m) => [m.id, m.class]),
        [
            ["records.0001_initial", "expand"],
            [REMOVE_ID, "contract"],
        ],
    );
    assert.equal(s.pending.length, 1);
    const [m] = s.pending;
    assert.deepEqual([m.id, m.class, m.blocked, m.acknowledged], [REMOVE_ID, "contract", true, false]);
    assert.deepEqual(
        m.operations.map((o) => [o.operation, o.class, o.line, o.summary]),
        [["RemoveField", "contract", 13, "RemoveField encounter.notes"]],
    );
});

void test("acknowledged in the stack file, the migration passes the gate; without a baseline every migration is listed", () => {
    const { dir } = project(`  thinlayer:acknowledgedMigrations:\n    - ${REMOVE_ID}\n`);
    const r = thinlayer("plan", "--stack", "t", "--project", dir, "--against", "main");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\n {2}records\.0002_remove_encounter_notes {2}contract {2}acknowledged\n/);
    assert.match(r.stdout, /\n {2}gate: passes \(with acknowledgements\)\n/);
    assert.ok(!r.stdout.includes("fix:"), "an acknowledged migration needs no fix");

    const all = thinlayer("plan", "--stack", "t", "--project", dir);
    assert.equal(all.code, 0, all.stderr);
    assert.match(
        all.stdout,
        /migrations to apply \(no baseline: all 2 listed; pass --against <git ref> or --deployed to see only those a deploy applies\):\n {2}records\.0001_initial {17}expand\n {6}CreateModel Patient \(line 14\)/,
    );
});

void test("plan --against and --deployed together is an input error", () => {
    const { dir } = project();
    const r = thinlayer("plan", "--stack", "t", "--project", dir, "--against", "main", "--deployed");
    assert.notEqual(r.code, 0);
    assert.match(
        r.stderr,
        /--against and --deployed: got \(both given\); expected one baseline for the migrations\. Fix: pass --against <git ref> for a pull request, or --deployed for the stack's release/,
    );
});
