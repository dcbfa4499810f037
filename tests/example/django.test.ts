/**
 * The example app's own checks, run for real: its Django tests, `manage.py check --deploy` and
 * `makemigrations --check --dry-run`, in its virtualenv (from PyPI), against a real PostgreSQL, with
 * the environment a stack's pods get (the stack file's settings + the Secret's).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { copyDir, tempDir } from "../lib/inputs.fixtures";
import { EXAMPLE_DIR, exampleVenv, missingExampleTools, needExampleTools, podEnvironment, secretSettings } from "../helpers/example-app";
import { startPostgres, type StartedPostgres } from "../helpers/postgres";

let pg: StartedPostgres | undefined;
let venv = "";

function manage(args: string[], o: { stack?: string; cwd?: string; extraEnv?: Record<string, string> } = {}) {
    if (!pg) throw new Error("PostgreSQL did not start (see the before hook)");
    const env = {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        LANG: "C.UTF-8",
        // As in the image: no .pyc files written into the checkout.
        PYTHONDONTWRITEBYTECODE: "1",
        PYTHONUNBUFFERED: "1",
        // The broker is never contacted by these commands; the worker test in container.test.ts uses a real one.
        ...podEnvironment(o.stack ?? "uat", secretSettings({ databaseUrl: pg.url, brokerUrl: "redis://127.0.0.1:9/0" })),
        ...o.extraEnv,
    };
    const r = spawnSync(path.join(venv, "bin", "python"), ["manage.py", ...args], { cwd: o.cwd ?? EXAMPLE_DIR, env, encoding: "utf8", timeout: 5 * 60_000 });
    return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

void describe("example app checks (real PostgreSQL, the stacks' settings)", { timeout: 20 * 60_000 }, () => {
    let ready = false;
    before(async () => {
        // Missing tools: nothing to start; each test then skips (locally) or fails (CI) with the reason.
        if (missingExampleTools().length) return;
        venv = exampleVenv();
        pg = await startPostgres();
        ready = true;
    });
    after(async () => {
        await pg?.stop();
    });
    const guard = (t: Parameters<typeof needExampleTools>[0]) => {
        if (!needExampleTools(t)) return false;
        assert.ok(ready, "the venv or PostgreSQL did not come up (see the before hook's error)");
        return true;
    };

    void test("the Django tests pass against PostgreSQL", (t) => {
        if (!guard(t)) return;
        const r = manage(["test", "--noinput", "-v", "2"]);
        assert.equal(r.status, 0, r.out);
        // On PostgreSQL (the role's own test database), not a silent SQLite fallback.
        assert.match(r.out, /Creating test database for alias 'default' \('test_emr'\)/, r.out);
        const ran = /Ran (\d+) tests? in/.exec(r.out);
        assert.ok(ran && Number(ran[1]) >= 9, `expected the example's 9+ tests to run:\n${r.out}`);
        assert.match(r.out, /\nOK\b/, r.out);
    });

    for (const stack of ["uat", "prod"]) {
        void test(`check --deploy finds nothing, warnings included, with the ${stack} stack's settings`, (t) => {
            if (!guard(t)) return;
            const r = manage(["check", "--deploy", "--fail-level", "WARNING", "--database", "default"], { stack });
            assert.equal(r.status, 0, r.out);
            assert.match(r.out, /System check identified no issues/, r.out);
        });
    }

    void test("check --deploy fails when https is turned off (the check bites)", (t) => {
        if (!guard(t)) return;
        const r = manage(["check", "--deploy", "--fail-level", "WARNING"], {
            extraEnv: { DJANGO_SECURE_SSL_REDIRECT: "false", DJANGO_SECURE_HSTS_SECONDS: "0" },
        });
        assert.notEqual(r.status, 0, r.out);
        assert.match(r.out, /security\.W004/, r.out);
        assert.match(r.out, /security\.W008/, r.out);
    });

    void test("outside DEBUG, a missing DATABASE_URL or DJANGO_SECRET_KEY stops every command with its name", (t) => {
        if (!guard(t)) return;
        for (const name of ["DATABASE_URL", "DJANGO_SECRET_KEY"]) {
            const r = manage(["check"], { extraEnv: { [name]: "" } });
            assert.notEqual(r.status, 0, r.out);
            assert.match(r.out, new RegExp(`RuntimeError: ${name} must be set when DJANGO_DEBUG is false`), r.out);
        }
    });

    void test("makemigrations --check --dry-run: every model change has its migration", (t) => {
        if (!guard(t)) return;
        const r = manage(["makemigrations", "--check", "--dry-run"]);
        assert.equal(r.status, 0, r.out);
        assert.match(r.out, /No changes detected/, r.out);
        // It reached the real database (it checks the migration history there) without a warning.
        assert.doesNotMatch(r.out, /RuntimeWarning|connection failed/, r.out);
    });

    void test("makemigrations --check fails on a model change without a migration (the check bites)", (t) => {
        if (!guard(t)) return;
        const copy = path.join(tempDir(), "emr");
        copyDir(EXAMPLE_DIR, copy);
        const models = path.join(copy, "records", "models.py");
        fs.writeFileSync(
            models,
            fs
                .readFileSync(models, "utf8")
                .replace(
                    "    notes = models.TextField(blank=True)\n",
                    "    notes = models.TextField(blank=True)\n    ward = models.CharField(max_length=32, blank=True)\n",
                ),
        );
        assert.match(fs.readFileSync(models, "utf8"), /ward = /, "the test's model edit did not apply");
        const r = manage(["makemigrations", "--check", "--dry-run"], { cwd: copy });
        assert.equal(r.status, 1, r.out);
        assert.match(r.out, /Add field ward to encounter/, r.out);
    });
});
